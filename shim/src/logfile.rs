//! The container's log in Docker's json-file format, one JSON object per message:
//! `{"log":"hi\n","stream":"stdout","time":"2026-11-22T10:00:00.123456789Z"}`,
//! rotated as Docker rotates it: when the file has reached `max_size`, `<path>.1` … `<path>.<max_file-1>` shift by
//! one and a fresh `<path>` starts, so at most `max_file` files exist. `docker logs`-style readers read them newest
//! last: `<path>.N` … `<path>.1`, `<path>`.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Result, ShimError};

/// Docker splits a line longer than this into partial messages (`bufio` size of its copier).
pub const MAX_MESSAGE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Rotation options, as Docker's `--log-opt max-size=… max-file=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Rotate once the file holds this many bytes; `None`: never.
    pub max_size: Option<u64>,
    /// How many files to keep, the current one included (at least 1).
    pub max_file: u32,
}

#[derive(Serialize)]
struct Entry<'a> {
    log: &'a str,
    stream: &'static str,
    time: &'a str,
}

/// An open json-file log.
pub struct JsonLog {
    path: PathBuf,
    rotation: Rotation,
    file: BufWriter<File>,
    size: u64,
    line: Vec<u8>,
}

impl JsonLog {
    /// Open (append to) the log at `path`, creating it 0640.
    pub fn open(path: &Path, rotation: Rotation) -> Result<Self> {
        let file = open_append(path)?;
        let size = file.metadata().map_err(ShimError::io("stat", path))?.len();
        Ok(JsonLog {
            path: path.to_path_buf(),
            rotation,
            file: BufWriter::with_capacity(32 * 1024, file),
            size,
            line: Vec::new(),
        })
    }

    /// Append one message. Rotation happens before the write, as in Docker: a file may pass `max_size` by one
    /// message.
    pub fn write(&mut self, stream: Stream, message: &[u8], time: &str) -> Result<()> {
        if let Some(max) = self.rotation.max_size
            && self.size >= max
            && self.size > 0
        {
            self.rotate()?;
        }
        let text = String::from_utf8_lossy(message);
        self.line.clear();
        serde_json::to_writer(&mut self.line, &Entry { log: &text, stream: stream.as_str(), time })
            .map_err(ShimError::json("log entry"))?;
        self.line.push(b'\n');
        self.file.write_all(&self.line).map_err(ShimError::io("write", &self.path))?;
        self.size += self.line.len() as u64;
        Ok(())
    }

    /// Push buffered messages to the file (after each batch read from the container).
    pub fn flush(&mut self) -> Result<()> {
        self.file.flush().map_err(ShimError::io("write", &self.path))
    }

    fn rotate(&mut self) -> Result<()> {
        self.flush()?;
        let keep = self.rotation.max_file.max(1);
        if keep > 1 {
            let numbered = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
            // The oldest falls off; the others shift up by one.
            match fs::remove_file(numbered(keep - 1)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ShimError::io("remove", numbered(keep - 1))(e)),
            }
            for n in (1..keep - 1).rev() {
                match fs::rename(numbered(n), numbered(n + 1)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(ShimError::io("rotate", numbered(n))(e)),
                }
            }
            fs::rename(&self.path, numbered(1)).map_err(ShimError::io("rotate", &self.path))?;
            self.file = BufWriter::with_capacity(32 * 1024, open_append(&self.path)?);
        } else {
            self.file.get_ref().set_len(0).map_err(ShimError::io("truncate", &self.path))?;
        }
        self.size = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(ShimError::io("create", dir))?;
    }
    OpenOptions::new().append(true).create(true).mode(0o640).open(path).map_err(ShimError::io("open", path))
}

/// Splits one stream's bytes into messages: one per line (the newline kept), a line longer than `MAX_MESSAGE`
/// as several partial messages, and whatever is left at EOF as a last message without a newline.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    pub fn push(&mut self, mut data: &[u8], mut emit: impl FnMut(&[u8])) {
        while !data.is_empty() {
            let room = MAX_MESSAGE - self.pending.len();
            let window = &data[..data.len().min(room)];
            match window.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let line = &window[..=i];
                    if self.pending.is_empty() {
                        emit(line);
                    } else {
                        self.pending.extend_from_slice(line);
                        emit(&self.pending);
                        self.pending.clear();
                    }
                    data = &data[i + 1..];
                }
                None if window.len() == room => {
                    // A full message without a newline: a partial message, as Docker writes it.
                    self.pending.extend_from_slice(window);
                    emit(&self.pending);
                    self.pending.clear();
                    data = &data[room..];
                }
                None => {
                    self.pending.extend_from_slice(window);
                    data = &[];
                }
            }
        }
    }

    /// The stream ended: emit what is left.
    pub fn finish(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.pending.is_empty() {
            emit(&self.pending);
            self.pending.clear();
        }
    }
}

/// Parse Docker's size notation: `100k`, `10m`, `1g`, `512` (bytes; units are powers of 1024, case-insensitive,
/// an optional trailing `b`).
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (digits, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: f64 = digits.trim().parse().map_err(|_| format!("invalid size {text:?} (use e.g. 512, 100k, 10m, 1g)"))?;
    if !n.is_finite() || n <= 0.0 {
        return Err(format!("invalid size {text:?}: must be positive"));
    }
    Ok((n * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, |m| out.push(m.to_vec()));
        }
        s.finish(|m| out.push(m.to_vec()));
        out
    }

    #[test]
    fn splits_lines_across_chunks() {
        let out = split(&[b"a\nb", b"c\n", b"\nd"]);
        assert_eq!(out, vec![b"a\n".to_vec(), b"bc\n".to_vec(), b"\n".to_vec(), b"d".to_vec()]);
    }

    #[test]
    fn long_lines_become_partial_messages() {
        let long = vec![b'x'; MAX_MESSAGE * 2 + 10];
        let mut data = long.clone();
        data.push(b'\n');
        let out = split(&[&data[..100], &data[100..]]);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].len(), MAX_MESSAGE);
        assert_eq!(out[1].len(), MAX_MESSAGE);
        assert_eq!(out[2], b"xxxxxxxxxx\n".to_vec());
    }

    #[test]
    fn sizes_parse_as_docker() {
        assert_eq!(parse_size("100k"), Ok(102_400));
        assert_eq!(parse_size("10M"), Ok(10 << 20));
        assert_eq!(parse_size("1gb"), Ok(1 << 30));
        assert_eq!(parse_size("512"), Ok(512));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("0").is_err());
    }

    #[test]
    fn rotates_into_max_file_files() -> Result<()> {
        let dir = tempfile::tempdir().map_err(ShimError::io("create", "tempdir"))?;
        let path = dir.path().join("c-json.log");
        let mut log = JsonLog::open(&path, Rotation { max_size: Some(1000), max_file: 3 })?;
        for i in 0..200 {
            log.write(Stream::Stdout, format!("line {i}\n").as_bytes(), "2026-01-01T00:00:00Z")?;
        }
        log.flush()?;
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .map_err(ShimError::io("list", dir.path()))?
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        names.sort();
        assert_eq!(names, vec!["c-json.log", "c-json.log.1", "c-json.log.2"]);
        let last = fs::read_to_string(&path).map_err(ShimError::io("read", &path))?;
        assert!(last.ends_with("{\"log\":\"line 199\\n\",\"stream\":\"stdout\",\"time\":\"2026-01-01T00:00:00Z\"}\n"));
        for n in &names {
            let len = fs::metadata(dir.path().join(n)).map_err(ShimError::io("stat", dir.path()))?.len();
            assert!(len < 1100, "{n} is {len} bytes");
        }
        Ok(())
    }
}
