//! Volumes and containers together: volumes made at create, mounted and filled at start, unmounted after the
//! last user exits, removed with the container (`rm -v`, AutoRemove) when anonymous.
//! Who uses a volume is read from the container records, so it needs no bookkeeping of its own and survives a
//! restart of berthd.

use std::path::{Path, PathBuf};

use super::mounts::{MountKind, MountPoint, Planned};
use super::store::{CreateRequest, VolumeStore};
use super::{Result, VolumeError};
use crate::container::spec::MountInput;
use crate::runtime::record::{ContainerRecord, Containers, Status};

/// Create what a new container's volumes need: named volumes used for the first time (as Docker does) and a
/// fresh anonymous volume each; returns the mount points with names and sources filled in. On failure the
/// anonymous volumes made so far are removed again.
pub fn attach(store: &VolumeStore, planned: Vec<Planned>) -> Result<Vec<MountPoint>> {
    let mut points = Vec::with_capacity(planned.len());
    let mut made: Vec<String> = Vec::new();
    for p in planned {
        match attach_one(store, p) {
            Ok(point) => {
                if point.anonymous {
                    made.push(point.name.clone());
                }
                points.push(point);
            }
            Err(e) => {
                for name in made {
                    let _ = store.remove(&name);
                }
                return Err(e);
            }
        }
    }
    Ok(points)
}

fn attach_one(store: &VolumeStore, p: Planned) -> Result<MountPoint> {
    let mut point = p.point;
    let Some(wanted) = p.volume else { return Ok(point) };
    let volume = if point.name.is_empty() {
        let (v, _) = store.create(CreateRequest {
            name: String::new(),
            driver: wanted.driver,
            options: wanted.driver_options,
            labels: wanted.labels,
        })?;
        v
    } else {
        match store.get(&point.name) {
            Ok(v) => v,
            Err(VolumeError::NotFound(_)) => {
                store
                    .create(CreateRequest {
                        name: point.name.clone(),
                        driver: wanted.driver,
                        options: wanted.driver_options,
                        labels: wanted.labels,
                    })?
                    .0
            }
            Err(e) => return Err(e),
        }
    };
    point.source = store.mountpoint(&volume.name).to_string_lossy().into_owned();
    point.name = volume.name;
    Ok(point)
}

/// At start: mount option volumes, copy the image's content into empty volumes, create missing bind sources
/// that may be created, and give the spec's mounts. `rootfs` is the container's mounted rootfs.
pub fn prepare(store: &VolumeStore, record: &ContainerRecord, rootfs: &Path) -> Result<Vec<MountInput>> {
    let points = &record.mounts;
    let mut out = Vec::with_capacity(points.len());
    for p in points {
        match p.kind {
            MountKind::Bind => {
                let source = PathBuf::from(&p.source);
                if !source.exists() {
                    if !p.create_host_path {
                        return Err(VolumeError::InvalidMount(format!(
                            "invalid mount config for type \"bind\": bind source path does not exist: {}",
                            p.source
                        )));
                    }
                    // Docker's create_host_path: a missing source of `Binds` becomes a directory.
                    std::fs::create_dir_all(&source).map_err(VolumeError::io("create", &source))?;
                }
                out.push(MountInput::Bind {
                    source,
                    target: p.destination.clone(),
                    read_only: !p.rw,
                    propagation: super::mounts::parse_propagation(&p.propagation),
                    non_recursive: p.non_recursive,
                });
            }
            MountKind::Volume => {
                store.get(&p.name)?;
                store.mount(&p.name)?;
                let data = store.mountpoint(&p.name);
                if !p.no_copy {
                    store.copy_up(&p.name, rootfs, &p.destination)?;
                }
                store.emit(
                    "mount",
                    &p.name,
                    &[
                        ("container", record.id.clone()),
                        ("destination", p.destination.clone()),
                        ("read/write", p.rw.to_string()),
                        ("propagation", p.propagation.clone()),
                    ],
                );
                out.push(MountInput::Volume { source: data, target: p.destination.clone(), read_only: !p.rw });
            }
            MountKind::Tmpfs => out.push(MountInput::Tmpfs {
                target: p.destination.clone(),
                size: p.tmpfs_size,
                mode: p.tmpfs_mode,
                read_only: !p.rw,
                options: p.tmpfs_options.clone(),
            }),
        }
    }
    Ok(out)
}

fn live(status: Status) -> bool {
    matches!(status, Status::Running | Status::Paused | Status::Restarting)
}

/// After container `id` stopped (or failed to start): unmount its option volumes that no running container
/// uses any more.
pub fn release(store: &VolumeStore, containers: &Containers, id: &str) {
    let Ok(record) = containers.get(id) else { return };
    let others: Vec<ContainerRecord> =
        containers.list().into_iter().filter(|r| r.id != record.id && live(r.state.status)).collect();
    for p in record.mounts.iter().filter(|p| p.kind == MountKind::Volume) {
        store.emit("unmount", &p.name, &[("container", record.id.clone())]);
        let used = others.iter().any(|r| r.mounts.iter().any(|m| m.kind == MountKind::Volume && m.name == p.name));
        if !used && let Err(e) = store.unmount(&p.name) {
            tracing::warn!(volume = %p.name, error = %e, "cannot unmount volume");
        }
    }
}

/// The containers (`id (name)`) whose mounts name the volume, running or not: such a volume is in use.
pub fn users(containers: &Containers, name: &str) -> Vec<String> {
    containers
        .list()
        .into_iter()
        .filter(|r| r.mounts.iter().any(|m| m.kind == MountKind::Volume && m.name == name))
        .map(|r| format!("{} ({})", r.id, r.name))
        .collect()
}

/// Remove a removed container's anonymous volumes that no other container uses (named ones always stay).
pub fn remove_anonymous(store: &VolumeStore, containers: &Containers, record: &ContainerRecord) {
    for p in record.mounts.iter().filter(|p| p.kind == MountKind::Volume && p.anonymous) {
        if users(containers, &p.name).is_empty()
            && let Err(e) = store.remove(&p.name)
        {
            tracing::warn!(volume = %p.name, error = %e, "cannot remove the container's anonymous volume");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::config::parse_create_body;

    #[test]
    fn named_volumes_are_made_on_first_use_and_anonymous_ones_each_time() -> Result<()> {
        let tmp = tempfile::tempdir().map_err(VolumeError::io("tempdir", Path::new("/tmp")))?;
        let store = VolumeStore::open(tmp.path());
        let body = parse_create_body(br#"{"HostConfig":{"Binds":["data:/data"]}}"#).unwrap_or_default();
        let planned = super::super::mounts::plan(&body, &["/cache".to_string()])?;
        let points = attach(&store, planned.clone())?;
        assert_eq!(points[0].name, "data");
        assert_eq!(points[0].source, store.mountpoint("data").to_string_lossy());
        assert!(points[1].anonymous && store.get(&points[1].name)?.anonymous());
        let again = attach(&store, planned)?;
        assert_eq!(again[0].name, "data");
        assert_ne!(again[1].name, points[1].name);
        assert_eq!(store.list().len(), 3);

        // Start: the image's /cache content lands in the empty anonymous volume; a bind source is made.
        let rootfs = tmp.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("cache")).map_err(VolumeError::io("mkdir", &rootfs))?;
        std::fs::write(rootfs.join("cache/f"), "img").map_err(VolumeError::io("write", &rootfs))?;
        let mut with_bind = points.clone();
        let host = tmp.path().join("made/by/bind");
        with_bind.push(MountPoint {
            kind: MountKind::Bind,
            source: host.to_string_lossy().into_owned(),
            destination: "/b".into(),
            rw: true,
            create_host_path: true,
            ..Default::default()
        });
        let record = ContainerRecord { id: "c1".into(), mounts: with_bind, ..Default::default() };
        let inputs = prepare(&store, &record, &rootfs)?;
        assert_eq!(inputs.len(), 3);
        assert!(host.is_dir());
        assert!(store.mountpoint(&points[1].name).join("f").is_file());
        Ok(())
    }
}
