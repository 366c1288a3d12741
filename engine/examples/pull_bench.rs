//! Pull benchmark driver (used by `bench/pull/run.sh`).
//!
//! ```text
//! pull_bench seed  IMAGE [LAYERS] [LAYER_MB]  build LAYERS gzip layers of LAYER_MB MiB of noise each and push them
//! pull_bench cold  IMAGE [ROOT]               one pull into an empty store (ROOT, or a temp dir)
//! pull_bench warm  IMAGE [RUNS]               pull once, then RUNS pulls of the present image
//! ```
//! Results are printed as `key=value` lines on stdout.

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_engine::image::store::ImageStore;
use berth_engine::image::{Digest, Reference};
use berth_engine::registry::{self, PullOptions, Puller, PushOptions, RegistryOptions};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match (arg(0), arg(1)) {
        (Some("seed"), Some(image)) => {
            let layers = arg(2).map(str::parse).transpose()?.unwrap_or(5);
            let mb = arg(3).map(str::parse).transpose()?.unwrap_or(10);
            rt.block_on(seed(image.parse()?, layers, mb))
        }
        (Some("cold"), Some(image)) => rt.block_on(cold(image.parse()?, arg(2))),
        (Some("warm"), Some(image)) => {
            let runs = arg(2).map(str::parse).transpose()?.unwrap_or(50);
            rt.block_on(warm(image.parse()?, runs))
        }
        _ => Err("usage: pull_bench seed|cold|warm IMAGE [...] (see the source)".into()),
    }
}

fn registry_options() -> RegistryOptions {
    RegistryOptions { auth_files: Vec::new(), ..RegistryOptions::default() }
}

fn pull_options() -> PullOptions {
    PullOptions { registry: registry_options(), ..PullOptions::default() }
}

/// Bytes that do not compress (xorshift).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Builds the image in a temporary store and pushes it with berth's push.
async fn seed(image: Reference, layers: usize, mb: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = ImageStore::open(dir.path())?;
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for i in 0..layers {
        let mut tar = tar::Builder::new(Vec::new());
        let data = noise(mb << 20, i as u64);
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        tar.append_data(&mut header, format!("data/layer{i}.bin"), data.as_slice())?;
        let tar = tar.into_inner()?;
        diff_ids.push(Digest::of(&tar).to_string());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar)?;
        let blob = gz.finish()?;
        let digest = store.write_blob(&blob)?;
        descriptors.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": digest.to_string(),
            "size": blob.len(),
        }));
    }
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Cmd": ["/bin/sh"] },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    }))?;
    let config_digest = store.write_blob(&config)?;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": registry::OCI_MANIFEST,
        "config": { "mediaType": registry::OCI_CONFIG, "digest": config_digest.to_string(), "size": config.len() },
        "layers": descriptors,
    }))?;
    let manifest_digest = store.write_blob(&manifest)?;
    store.add_image(&manifest_digest, Some(&image))?;
    let opts = PushOptions { registry: registry_options(), ..PushOptions::default() };
    let start = Instant::now();
    let pushed = registry::push(&store, &image.to_string(), &image, &opts, |_| {}).await?;
    println!("push_ms={:.1}", ms(start.elapsed()));
    println!("manifest={pushed}");
    Ok(())
}

/// One pull into an empty store; the process's peak RSS is this pull's.
async fn cold(image: Reference, root: Option<&str>) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let root = root.map_or_else(|| tmp.path().join("root"), std::path::PathBuf::from);
    let store = ImageStore::open(&root)?;
    let start = Instant::now();
    let pulled = registry::pull(&store, &image, &pull_options(), |_| {}).await?;
    let elapsed = start.elapsed();
    let bytes: u64 = pulled.layers.iter().map(|l| l.size).sum();
    println!("cold_ms={:.1}", ms(elapsed));
    println!("bytes={bytes}");
    println!("mib_per_s={:.1}", bytes as f64 / (1 << 20) as f64 / elapsed.as_secs_f64());
    Ok(())
}

/// Pulls of an image already present: with berthd's long-lived Puller, and one-off pulls (new client each).
async fn warm(image: Reference, runs: usize) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let store = Arc::new(ImageStore::open(tmp.path())?);
    let puller = Puller::new(store.clone());
    puller.pull(&image, &pull_options(), |_| {}).await?;
    let fetched = puller.stats().blob_fetches;
    let mut kept = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        puller.pull(&image, &pull_options(), |_| {}).await?;
        kept.push(start.elapsed());
    }
    if puller.stats().blob_fetches != fetched {
        return Err("a warm pull downloaded a blob".into());
    }
    let mut one_off = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        registry::pull(&store, &image, &pull_options(), |_| {}).await?;
        one_off.push(start.elapsed());
    }
    report("warm", &mut kept);
    report("warm_new_client", &mut one_off);
    Ok(())
}

fn report(name: &str, samples: &mut [Duration]) {
    samples.sort();
    let at = |q: f64| samples.get(((samples.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or_default();
    println!("{name}_median_ms={:.2}", ms(at(0.5)));
    println!("{name}_p90_ms={:.2}", ms(at(0.9)));
    println!("{name}_min_ms={:.2}", ms(at(0.0)));
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
