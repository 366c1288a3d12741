//! berthd's event bus: every part of the engine emits through a cheap-to-clone [`Events`] handle, and
//! `GET /events` replays the recent history then streams live events, in Docker's message shape.
//!
//! # Emitting (one line at the call site)
//! - containers: `events.container(&record, "start", &[])`; actions `create`, `start`, `die` (with
//!   `("exitCode", code)`), `kill` (with `("signal", "15")`), `stop`, `restart`, `pause`, `unpause`, `destroy`,
//!   `rename` (with `("oldName", old)`), `attach`, `oom`, `exec_create: <cmd>` / `exec_start: <cmd>` (with
//!   `("execID", id)`), `exec_die` (with `("execID", id)`, `("exitCode", code)`), `health_status: healthy`.
//!   The container's labels, `name` and `image` are added as Docker adds them (compose tooling filters on them).
//! - images: `events.image("pull", "busybox:latest", "busybox:latest")` — `(action, actor id, name)`; actions
//!   `pull`, `tag`, `untag`, `delete`, `import`, `load`, `save`, `push`.
//! - volumes: `events.volume("mount", "data", &[("container", id), ("destination", "/data")])`; actions `create`,
//!   `mount`, `unmount`, `destroy`. Networks: `events.network("connect", id, name, &[("container", cid)])`.
//! - anything else: [`Events::emit`].
//!
//! # Guarantees
//! Emitting never blocks and never fails: a subscriber that falls behind by more than the channel holds loses the
//! oldest events (Docker drops them too). The history is the last [`HISTORY`] events, in memory only: like
//! Docker, berthd does not keep events across its restarts.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use crate::runtime::record::ContainerRecord;

/// How many recent events `GET /events?since=` can replay.
pub const HISTORY: usize = 1024;

/// How many live events a slow subscriber may lag behind before it loses some.
const CHANNEL: usize = 1024;

/// Docker's event message (`docker events --format '{{json .}}'` prints it as is).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Legacy fields Docker still fills for containers and images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    #[serde(default)]
    pub scope: String,
    /// Unix seconds.
    #[serde(default)]
    pub time: i64,
    #[serde(default, rename = "timeNano")]
    pub time_nano: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(default, rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

impl Event {
    /// A new event stamped now, with the legacy fields Docker fills for containers and images.
    pub fn new(kind: &str, action: &str, id: &str, attributes: BTreeMap<String, String>) -> Event {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let time_nano = i64::try_from(now.as_nanos()).unwrap_or(i64::MAX);
        let legacy = matches!(kind, "container" | "image");
        Event {
            status: legacy.then(|| action.to_string()),
            id: legacy.then(|| id.to_string()),
            from: (kind == "container").then(|| attributes.get("image").cloned()).flatten(),
            kind: kind.to_string(),
            action: action.to_string(),
            actor: Actor { id: id.to_string(), attributes },
            scope: "local".into(),
            time: time_nano.div_euclid(1_000_000_000),
            time_nano,
        }
    }
}

/// The handle every part of berthd emits through; clones share one bus.
#[derive(Clone)]
pub struct Events {
    inner: Arc<Inner>,
}

struct Inner {
    /// The history, and the lock that orders emitting against subscribing: a subscriber sees each event once,
    /// either in its replay or live.
    history: Mutex<VecDeque<Arc<Event>>>,
    live: broadcast::Sender<Arc<Event>>,
    /// Set when berthd shuts down: open streams end so they do not hold its shutdown.
    closed: watch::Sender<bool>,
}

impl Default for Events {
    fn default() -> Self {
        Events::new()
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl Events {
    pub fn new() -> Events {
        let (live, _) = broadcast::channel(CHANNEL);
        let (closed, _) = watch::channel(false);
        Events { inner: Arc::new(Inner { history: Mutex::new(VecDeque::with_capacity(HISTORY)), live, closed }) }
    }

    /// Record and broadcast one event.
    pub fn emit(&self, event: Event) {
        let event = Arc::new(event);
        let mut history = self.inner.history.lock().unwrap_or_else(|e| e.into_inner());
        if history.len() == HISTORY {
            history.pop_front();
        }
        history.push_back(event.clone());
        // No subscriber is not an error.
        let _ = self.inner.live.send(event);
    }

    /// A container event; its labels, `name` and `image` join `extra` in the attributes.
    pub fn container(&self, record: &ContainerRecord, action: &str, extra: &[(&str, String)]) {
        let mut attributes: BTreeMap<String, String> = record.config.labels.clone().into_iter().collect();
        attributes.insert("name".into(), record.name.clone());
        attributes.insert("image".into(), record.image.clone());
        for (k, v) in extra {
            attributes.insert((*k).to_string(), v.clone());
        }
        self.emit(Event::new("container", action, &record.id, attributes));
    }

    /// An image event: Docker's actor is the image id or the reference the action was about.
    pub fn image(&self, action: &str, id: &str, name: &str) {
        let mut attributes = BTreeMap::new();
        if !name.is_empty() {
            attributes.insert("name".to_string(), name.to_string());
        }
        self.emit(Event::new("image", action, id, attributes));
    }

    /// A volume event (actor: the volume's name); the `local` driver unless `extra` says otherwise.
    pub fn volume(&self, action: &str, name: &str, extra: &[(&str, String)]) {
        let mut attributes = BTreeMap::from([("driver".to_string(), "local".to_string())]);
        for (k, v) in extra {
            attributes.insert((*k).to_string(), v.clone());
        }
        self.emit(Event::new("volume", action, name, attributes));
    }

    /// A network event (actor: the network's id), with its `name` and `type` (bridge unless `extra` says).
    pub fn network(&self, action: &str, id: &str, name: &str, extra: &[(&str, String)]) {
        let mut attributes =
            BTreeMap::from([("name".to_string(), name.to_string()), ("type".to_string(), "bridge".to_string())]);
        for (k, v) in extra {
            attributes.insert((*k).to_string(), v.clone());
        }
        self.emit(Event::new("network", action, id, attributes));
    }

    /// End every open stream (berthd is shutting down); later subscribers end after their replay.
    pub fn close(&self) {
        self.inner.closed.send_replace(true);
    }

    /// The events that match `filter` between `since` and `until` (unix nanoseconds): the history first when
    /// either bound is given (as Docker replays), then live ones, until `until` passes or berthd shuts down.
    pub fn stream(
        &self,
        since: Option<i64>,
        until: Option<i64>,
        filter: Filter,
    ) -> impl futures_util::Stream<Item = Arc<Event>> + Send + 'static {
        let (replay, live) = {
            let history = self.inner.history.lock().unwrap_or_else(|e| e.into_inner());
            let replay: VecDeque<Arc<Event>> = if since.is_some() || until.is_some() {
                history
                    .iter()
                    .filter(|e| since.is_none_or(|s| e.time_nano >= s) && until.is_none_or(|u| e.time_nano <= u))
                    .cloned()
                    .collect()
            } else {
                VecDeque::new()
            };
            (replay, self.inner.live.subscribe())
        };
        let ended = until.is_some_and(|u| u <= now_nanos());
        let cursor =
            Cursor { replay, live: (!ended).then_some(live), until, filter, closed: self.inner.closed.subscribe() };
        futures_util::stream::unfold(cursor, |mut c| async move { c.next().await.map(|e| (e, c)) })
    }
}

struct Cursor {
    replay: VecDeque<Arc<Event>>,
    live: Option<broadcast::Receiver<Arc<Event>>>,
    until: Option<i64>,
    filter: Filter,
    closed: watch::Receiver<bool>,
}

impl Cursor {
    async fn next(&mut self) -> Option<Arc<Event>> {
        while let Some(e) = self.replay.pop_front() {
            if self.filter.matches(&e) {
                return Some(e);
            }
        }
        let until = self.until;
        let deadline = until.map(|u| {
            let left = u.saturating_sub(now_nanos()).max(0);
            tokio::time::Instant::now() + std::time::Duration::from_nanos(left.unsigned_abs())
        });
        let live = self.live.as_mut()?;
        loop {
            // Biased: events already sent are delivered before a deadline or the shutdown ends the stream.
            let received = tokio::select! {
                biased;
                r = live.recv() => r,
                () = sleep_until(deadline) => return None,
                _ = self.closed.wait_for(|closed| *closed) => return None,
            };
            match received {
                Ok(e) if until.is_some_and(|u| e.time_nano > u) => return None,
                Ok(e) if self.filter.matches(&e) => return Some(e),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn now_nanos() -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(now.as_nanos()).unwrap_or(i64::MAX)
}

/// Docker's event filters: values of one key are alternatives, keys must all match.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    by: HashMap<String, Vec<String>>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FilterError {
    #[error("invalid filter '{0}'")]
    UnknownKey(String),
    #[error("invalid timestamp {0:?}: expected unix seconds (with a fraction) or RFC 3339")]
    Time(String),
}

/// The filter keys `GET /events` understands.
const KEYS: [&str; 8] = ["type", "event", "container", "image", "label", "volume", "network", "scope"];

impl Filter {
    /// From the parsed `filters` query (`{"type":["container"]}`); an unknown key is an error, as in Docker.
    pub fn new(by: HashMap<String, Vec<String>>) -> Result<Filter, FilterError> {
        if let Some(k) = by.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(FilterError::UnknownKey(k.clone()));
        }
        Ok(Filter { by: by.into_iter().filter(|(_, v)| !v.is_empty()).collect() })
    }

    pub fn matches(&self, e: &Event) -> bool {
        let attr = |k: &str| e.actor.attributes.get(k).map(String::as_str).unwrap_or_default();
        // The action before `:` too, so `event=exec_start` finds `exec_start: sh -c …`.
        let bare_action = e.action.split(':').next().unwrap_or_default();
        self.exact("type", &[&e.kind])
            && self.exact("event", &[&e.action, bare_action])
            && self.exact("scope", &[&e.scope])
            && self.named("container", "container", e)
            && self.named("volume", "volume", e)
            && self.named("network", "network", e)
            && self.image(e, attr(if e.kind == "image" { "name" } else { "image" }))
            && self.labels(e)
    }

    fn values(&self, key: &str) -> Option<&[String]> {
        self.by.get(key).map(Vec::as_slice)
    }

    fn exact(&self, key: &str, candidates: &[&str]) -> bool {
        self.values(key).is_none_or(|vs| vs.iter().any(|v| candidates.contains(&v.as_str())))
    }

    /// `container=`/`volume=`/`network=`: the actor's id (or a prefix of it) or its name, for that type only.
    fn named(&self, key: &str, kind: &str, e: &Event) -> bool {
        let Some(vs) = self.values(key) else { return true };
        let name = e.actor.attributes.get("name").map(String::as_str).unwrap_or_default();
        e.kind == kind
            && vs.iter().any(|v| {
                let v = v.trim_start_matches('/');
                e.actor.id == v || (!v.is_empty() && e.actor.id.starts_with(v)) || (!name.is_empty() && name == v)
            })
    }

    /// `image=`: the actor id or image name, with or without its tag.
    fn image(&self, e: &Event, name: &str) -> bool {
        let Some(vs) = self.values("image") else { return true };
        let candidates = [e.actor.id.as_str(), name, strip_tag(&e.actor.id), strip_tag(name)];
        vs.iter().any(|v| !v.is_empty() && candidates.contains(&v.as_str()))
    }

    /// `label=key` or `label=key=value`, against the attributes (where container labels are).
    fn labels(&self, e: &Event) -> bool {
        let Some(vs) = self.values("label") else { return true };
        vs.iter().all(|v| match v.split_once('=') {
            Some((k, val)) => e.actor.attributes.get(k).is_some_and(|x| x == val),
            None => e.actor.attributes.contains_key(v),
        })
    }
}

/// `busybox:1` → `busybox`; a registry port (`host:5000/x`) is not a tag.
fn strip_tag(name: &str) -> &str {
    match name.rfind(':') {
        Some(i) if !name[i..].contains('/') && !name.starts_with("sha256:") => &name[..i],
        _ => name,
    }
}

/// `since`/`until` as the docker CLI sends them (`1700000000`, `1700000000.5`) or RFC 3339: unix nanoseconds.
pub fn parse_time(s: &str) -> Result<i64, FilterError> {
    let bad = || FilterError::Time(s.to_string());
    let s = s.trim();
    if s.is_empty() {
        return Err(bad());
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-') {
        let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
        let secs: i64 = secs.parse().map_err(|_| bad())?;
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        // Nine digits of nanoseconds, padded or cut.
        let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        let nanos: i64 = digits.parse().map_err(|_| bad())?;
        return secs.checked_mul(1_000_000_000).and_then(|n| n.checked_add(nanos)).ok_or_else(bad);
    }
    // RFC 3339: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
    if s.len() < 20 || s.as_bytes().get(10).is_none_or(|b| !matches!(b, b'T' | b't' | b' ')) {
        return Err(bad());
    }
    let secs = crate::time::unix_seconds(Some(s));
    if secs == 0 && !s.starts_with("1970-01-01T00:00:00") {
        return Err(bad());
    }
    let nanos = s
        .get(19..)
        .and_then(|rest| rest.strip_prefix('.'))
        .map(|f| f.chars().take_while(char::is_ascii_digit).chain(std::iter::repeat('0')).take(9).collect::<String>())
        .and_then(|d| d.parse::<i64>().ok())
        .unwrap_or(0);
    secs.checked_mul(1_000_000_000).and_then(|n| n.checked_add(nanos)).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn record() -> ContainerRecord {
        let mut r =
            ContainerRecord { id: "abc123".repeat(10), name: "web".into(), image: "bb:1".into(), ..Default::default() };
        r.config.labels.insert("com.docker.compose.project".into(), "demo".into());
        r
    }

    fn filter(pairs: &[(&str, &str)]) -> Filter {
        let mut by: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in pairs {
            by.entry((*k).to_string()).or_default().push((*v).to_string());
        }
        Filter::new(by).unwrap_or_default()
    }

    #[test]
    fn container_events_carry_labels_name_image_and_legacy_fields() {
        let bus = Events::new();
        bus.container(&record(), "die", &[("exitCode", "3".into())]);
        let history = bus.inner.history.lock().map(|h| h.clone()).unwrap_or_default();
        let e = &history[0];
        let v = serde_json::to_value(e.as_ref()).unwrap_or_default();
        assert_eq!(v["Type"], "container");
        assert_eq!(v["Action"], "die");
        assert_eq!(v["status"], "die");
        assert_eq!(v["from"], "bb:1");
        assert_eq!(v["scope"], "local");
        assert_eq!(v["Actor"]["Attributes"]["exitCode"], "3");
        assert_eq!(v["Actor"]["Attributes"]["name"], "web");
        assert_eq!(v["Actor"]["Attributes"]["com.docker.compose.project"], "demo");
        assert_eq!(v["time"].as_i64(), Some(e.time_nano / 1_000_000_000));
        let volume = Event::new("volume", "create", "data", BTreeMap::new());
        let v = serde_json::to_value(&volume).unwrap_or_default();
        assert!(v.get("status").is_none() && v.get("id").is_none(), "{v}");
    }

    #[test]
    fn filters_match_as_dockers_do() {
        let r = record();
        let mut attrs: BTreeMap<String, String> = r.config.labels.clone().into_iter().collect();
        attrs.insert("name".into(), "web".into());
        attrs.insert("image".into(), "bb:1".into());
        let start = Event::new("container", "start", &r.id, attrs);
        let exec = Event::new("container", "exec_start: sh -c ls", &r.id, BTreeMap::new());
        let image = Event::new("image", "tag", "sha256:ff", BTreeMap::from([("name".into(), "bb:2".into())]));
        let volume = Event::new("volume", "create", "data", BTreeMap::new());
        assert!(filter(&[]).matches(&start));
        assert!(filter(&[("type", "container"), ("event", "start")]).matches(&start));
        assert!(!filter(&[("type", "image")]).matches(&start));
        assert!(filter(&[("event", "die"), ("event", "start")]).matches(&start));
        assert!(filter(&[("event", "exec_start")]).matches(&exec));
        assert!(filter(&[("container", "web")]).matches(&start));
        assert!(filter(&[("container", "/web")]).matches(&start));
        assert!(filter(&[("container", "abc123abc")]).matches(&start));
        assert!(!filter(&[("container", "db")]).matches(&start));
        assert!(!filter(&[("container", "web")]).matches(&image));
        assert!(filter(&[("image", "bb")]).matches(&start));
        assert!(filter(&[("image", "bb:1")]).matches(&start));
        assert!(filter(&[("image", "bb:2")]).matches(&image));
        assert!(filter(&[("image", "sha256:ff")]).matches(&image));
        assert!(!filter(&[("image", "bb:1")]).matches(&image));
        assert!(filter(&[("label", "com.docker.compose.project=demo")]).matches(&start));
        assert!(filter(&[("label", "com.docker.compose.project")]).matches(&start));
        assert!(!filter(&[("label", "com.docker.compose.project=other")]).matches(&start));
        assert!(filter(&[("volume", "data")]).matches(&volume));
        assert!(!filter(&[("volume", "other")]).matches(&volume));
        assert!(!filter(&[("network", "data")]).matches(&volume));
        let unknown = Filter::new(HashMap::from([("colour".to_string(), vec!["red".to_string()])]));
        assert_eq!(unknown.err(), Some(FilterError::UnknownKey("colour".into())));
    }

    #[test]
    fn times_parse_as_the_docker_cli_sends_them() {
        assert_eq!(parse_time("1700000000"), Ok(1_700_000_000_000_000_000));
        assert_eq!(parse_time("1700000000.5"), Ok(1_700_000_000_500_000_000));
        assert_eq!(parse_time("1700000000.000000001"), Ok(1_700_000_000_000_000_001));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000_000_000));
        assert_eq!(parse_time("2023-11-14T23:13:20.25+01:00"), Ok(1_700_000_000_250_000_000));
        assert!(parse_time("").is_err());
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("1.2.3").is_err());
        assert!(parse_time("99999999999999999999").is_err());
    }

    #[test]
    fn history_is_bounded() {
        let bus = Events::new();
        for i in 0..HISTORY + 10 {
            bus.image("tag", &format!("sha256:{i}"), "");
        }
        let history = bus.inner.history.lock().map(|h| h.clone()).unwrap_or_default();
        assert_eq!(history.len(), HISTORY);
        assert_eq!(history.front().map(|e| e.actor.id.clone()), Some("sha256:10".to_string()));
    }

    #[tokio::test]
    async fn replay_then_live_then_end_at_until() {
        let bus = Events::new();
        let at =
            |kind: &str, id: &str, time_nano: i64| Event { time_nano, ..Event::new(kind, "x", id, BTreeMap::new()) };
        bus.emit(at("image", "old", 1_000));
        bus.emit(at("image", "a", 2_000));
        bus.emit(at("volume", "v", 3_000));
        // Replay from 2000 ns (inclusive), type filter, then live events until the bus closes.
        let stream = bus.stream(Some(2_000), None, filter(&[("type", "image")]));
        bus.image("tag", "b", "");
        bus.close();
        let got: Vec<String> = stream.map(|e| e.actor.id.clone()).collect().await;
        assert_eq!(got, ["a", "b"]);

        // `until` in the past: the replay only, then the end.
        let bus = Events::new();
        bus.image("pull", "a", "");
        let until = now_nanos();
        let stream = bus.stream(None, Some(until), Filter::default());
        bus.image("pull", "later", "");
        let got: Vec<String> = stream.map(|e| e.actor.id.clone()).collect().await;
        assert_eq!(got, ["a"]);

        // Without bounds: no replay, live only.
        let bus = Events::new();
        bus.image("pull", "before", "");
        let stream = bus.stream(None, None, Filter::default());
        bus.image("pull", "after", "");
        bus.close();
        let got: Vec<String> = stream.map(|e| e.actor.id.clone()).collect().await;
        assert_eq!(got, ["after"]);
    }
}
