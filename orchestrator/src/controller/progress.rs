//! Progress as Docker Compose reports it: one event per resource and state change, rendered as a plain line
//! (` Container hello-web-1  Started`). The CLI decides where lines go; tests collect them.

use std::fmt;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Container,
    Volume,
    Network,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub resource: Resource,
    pub name: String,
    /// `Creating`, `Created`, `Starting`, `Started`, `Running`, `Stopping`, …
    pub status: String,
}

impl Event {
    pub fn container(name: &str, status: &str) -> Event {
        Event { resource: Resource::Container, name: name.to_string(), status: status.to_string() }
    }

    pub fn volume(name: &str, status: &str) -> Event {
        Event { resource: Resource::Volume, name: name.to_string(), status: status.to_string() }
    }

    pub fn network(name: &str, status: &str) -> Event {
        Event { resource: Resource::Network, name: name.to_string(), status: status.to_string() }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.resource {
            Resource::Container => "Container",
            Resource::Volume => "Volume",
            Resource::Network => "Network",
        };
        write!(f, " {kind} {}  {}", self.name, self.status)
    }
}

/// Where events go; shared by the parallel steps.
pub type Reporter = Arc<dyn Fn(&Event) + Send + Sync>;

/// A reporter that drops everything (`--progress quiet`).
pub fn quiet() -> Reporter {
    Arc::new(|_| {})
}

/// A reporter that keeps every event, for tests and summaries.
pub fn collecting() -> (Reporter, Arc<Mutex<Vec<Event>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let reporter: Reporter = Arc::new(move |e: &Event| {
        if let Ok(mut v) = sink.lock() {
            v.push(e.clone());
        }
    });
    (reporter, events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_look_like_docker_compose() {
        assert_eq!(Event::container("hello-web-1", "Started").to_string(), " Container hello-web-1  Started");
        assert_eq!(Event::volume("hello_data", "Created").to_string(), " Volume hello_data  Created");
        let (r, events) = collecting();
        r(&Event::container("a", "Running"));
        assert_eq!(events.lock().map(|v| v.len()).unwrap_or(0), 1);
    }
}
