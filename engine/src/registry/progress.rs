//! What a pull or push reports while it runs, one event per step and per layer, in the order Docker prints them
//! ("Already exists", "Downloading 3.1MB/10MB", "Pull complete", "Digest: …", "Status: …").

use crate::image::Digest;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressEvent {
    /// The reference resolved to this manifest (for an index, the platform's manifest), with this many layers.
    Resolved { reference: String, manifest_digest: Digest, layers: usize },
    /// A blob already in the local store (pull) or in the registry (push): nothing to transfer.
    BlobExists { digest: Digest, size: u64 },
    /// Another pull is fetching this blob; this one waits for it.
    BlobWaiting { digest: Digest },
    /// Bytes transferred so far; sent at most every [`PROGRESS_STEP`] bytes and at the end.
    BlobProgress { digest: Digest, current: u64, total: u64 },
    /// The blob is complete: verified and committed to the store (pull) or accepted by the registry (push).
    BlobDone { digest: Digest, size: u64 },
    /// The pull or push finished. `up_to_date` when nothing had to be transferred.
    Done { manifest_digest: Digest, up_to_date: bool },
}

/// How many bytes between two [`ProgressEvent::BlobProgress`] events of one blob.
pub const PROGRESS_STEP: u64 = 512 * 1024;

impl ProgressEvent {
    /// The digest of the blob the event is about, if it is about one.
    pub fn blob(&self) -> Option<&Digest> {
        match self {
            ProgressEvent::BlobExists { digest, .. }
            | ProgressEvent::BlobWaiting { digest }
            | ProgressEvent::BlobProgress { digest, .. }
            | ProgressEvent::BlobDone { digest, .. } => Some(digest),
            ProgressEvent::Resolved { .. } | ProgressEvent::Done { .. } => None,
        }
    }
}

/// A progress callback shared by the concurrent transfers of one pull: a lock held only for the call.
pub(crate) struct Reporter<F> {
    sink: std::sync::Mutex<F>,
}

impl<F: FnMut(ProgressEvent) + Send> Reporter<F> {
    pub(crate) fn new(sink: F) -> Self {
        Reporter { sink: std::sync::Mutex::new(sink) }
    }

    pub(crate) fn send(&self, event: ProgressEvent) {
        // A panic in an earlier callback poisons the lock; keep reporting rather than propagate it.
        let mut sink = self.sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        (sink)(event);
    }
}

/// Counts bytes of one blob and says when a progress event is due.
pub(crate) struct Meter {
    pub(crate) current: u64,
    last_sent: u64,
}

impl Meter {
    pub(crate) fn new() -> Self {
        Meter { current: 0, last_sent: 0 }
    }

    /// Adds `n` bytes; true when an event should be sent.
    pub(crate) fn add(&mut self, n: u64) -> bool {
        self.current += n;
        if self.current - self.last_sent >= PROGRESS_STEP {
            self.last_sent = self.current;
            true
        } else {
            false
        }
    }
}
