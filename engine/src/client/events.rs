//! `GET /events` for the orchestrator: a typed stream of [`Event`]s (Docker's message shape), filtered by berthd.
//!
//! ```no_run
//! # async fn demo(client: berth_engine::client::Client) -> Result<(), berth_engine::client::ClientError> {
//! use futures_util::StreamExt;
//! use berth_engine::client::events::EventsOptions;
//! let mut events = client.events(&EventsOptions::default().filter("label", "com.docker.compose.project=demo")).await?;
//! while let Some(event) = events.next().await {
//!     let event = event?;
//!     println!("{} {} {}", event.kind, event.action, event.actor.id);
//! }
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::{Client, ClientError, Method};
pub use crate::events::{Actor, Event};

/// What `GET /events` is asked for. Without `since` and `until` only live events come; with `until` the stream
/// ends there (at once after the history when it is in the past).
#[derive(Debug, Clone, Default)]
pub struct EventsOptions {
    /// Unix seconds (`1700000000`, `1700000000.5`) or RFC 3339.
    pub since: Option<String>,
    pub until: Option<String>,
    /// Docker's event filters: `type`, `event`, `container`, `image`, `label`, `volume`, `network`.
    pub filters: HashMap<String, Vec<String>>,
}

impl EventsOptions {
    /// One more filter value (values of one key are alternatives, keys must all match).
    pub fn filter(mut self, key: &str, value: &str) -> EventsOptions {
        self.filters.entry(key.to_string()).or_default().push(value.to_string());
        self
    }

    fn path(&self) -> Result<String, ClientError> {
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(s) = &self.since {
            params.push(("since", s.clone()));
        }
        if let Some(u) = &self.until {
            params.push(("until", u.clone()));
        }
        if !self.filters.is_empty() {
            params.push(("filters", serde_json::to_string(&self.filters)?));
        }
        let q = serde_urlencoded::to_string(&params).map_err(|e| ClientError::Request(format!("/events: {e}")))?;
        Ok(if q.is_empty() { "/events".to_string() } else { format!("/events?{q}") })
    }
}

/// Events as berthd sends them; ends when berthd ends the stream (its `until`, its shutdown) or the connection
/// breaks (an error item).
pub type EventStream = Pin<Box<dyn Stream<Item = Result<Event, ClientError>> + Send>>;

impl Client {
    /// `GET /events`: answers once berthd accepted the request (subscribed); events then arrive as they happen.
    pub async fn events(&self, options: &EventsOptions) -> Result<EventStream, ClientError> {
        let resp = self.send(Method::GET, &options.path()?, None).await?;
        let state = (resp.into_body(), Lines::default(), false);
        let stream = futures_util::stream::unfold(state, |(mut body, mut lines, mut done)| async move {
            loop {
                if let Some(line) = lines.next_line() {
                    let item = serde_json::from_slice::<Event>(&line).map_err(ClientError::from);
                    return Some((item, (body, lines, done)));
                }
                if done {
                    return None;
                }
                match next_data(&mut body).await {
                    Ok(Some(data)) => lines.push(&data),
                    Ok(None) => {
                        lines.finish();
                        done = true;
                    }
                    Err(e) => return Some((Err(e), (body, Lines::default(), true))),
                }
            }
        });
        Ok(Box::pin(stream))
    }
}

/// The next data frame of a body; `None` at its end.
async fn next_data(body: &mut Incoming) -> Result<Option<Bytes>, ClientError> {
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            return Ok(Some(data));
        }
    }
    Ok(None)
}

/// Newline-delimited messages out of chunks that may split them anywhere.
#[derive(Debug, Default)]
struct Lines {
    buf: Vec<u8>,
    ready: std::collections::VecDeque<Vec<u8>>,
}

impl Lines {
    fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=pos).collect();
            self.keep(line);
        }
    }

    /// The body ended: a last message without its newline still counts.
    fn finish(&mut self) {
        let rest = std::mem::take(&mut self.buf);
        self.keep(rest);
    }

    fn keep(&mut self, line: Vec<u8>) {
        if !line.iter().all(u8::is_ascii_whitespace) {
            self.ready.push_back(line);
        }
    }

    fn next_line(&mut self) -> Option<Vec<u8>> {
        self.ready.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_split_anywhere_are_reassembled() {
        let a = br#"{"Type":"container","Action":"start","Actor":{"ID":"x","Attributes":{"name":"web"}},"scope":"local","time":1,"timeNano":1000000000}"#;
        let b = br#"{"Type":"image","Action":"tag","Actor":{"ID":"sha256:1"}}"#;
        let mut all = a.to_vec();
        all.push(b'\n');
        all.extend_from_slice(b"\n");
        all.extend_from_slice(b);
        for cut in [1, 7, a.len(), a.len() + 1, all.len() - 1] {
            let mut lines = Lines::default();
            lines.push(&all[..cut]);
            lines.push(&all[cut..]);
            lines.finish();
            let got: Vec<Event> =
                std::iter::from_fn(|| lines.next_line()).filter_map(|l| serde_json::from_slice(&l).ok()).collect();
            assert_eq!(got.len(), 2, "cut at {cut}");
            assert_eq!(got[0].actor.attributes.get("name").map(String::as_str), Some("web"));
            assert_eq!(got[1].kind, "image");
            assert!(got[1].actor.attributes.is_empty());
        }
    }

    #[test]
    fn options_become_the_query() -> Result<(), ClientError> {
        assert_eq!(EventsOptions::default().path()?, "/events");
        let o = EventsOptions { since: Some("1700000000.5".into()), ..Default::default() }.filter("type", "container");
        assert_eq!(o.path()?, "/events?since=1700000000.5&filters=%7B%22type%22%3A%5B%22container%22%5D%7D");
        Ok(())
    }
}
