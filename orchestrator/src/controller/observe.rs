//! The observed state of a project: its containers (and volumes) as berthd lists them by the project label, in
//! one list call each, so a no-change `up` costs no per-container inspect.

use berth_engine::client::Client;
use berth_engine::client::containers::{ContainerSummary, ListContainersOptions};
use berth_engine::client::volumes::ListVolumesOptions;

use super::{ControllerError, labels, names};

/// One container of the project, from the list call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObservedContainer {
    pub id: String,
    pub name: String,
    pub service: String,
    pub number: u32,
    /// Docker's state word: created, running, paused, restarting, exited, dead.
    pub state: String,
    /// Docker's status text (`Up`, `Exited (0)`).
    pub status: String,
    pub config_hash: String,
    /// The image id the container runs (`sha256:…`).
    pub image_id: String,
    /// The image reference it was created with.
    pub image: String,
    /// Made by `run`, not by `up`.
    pub oneoff: bool,
    pub created: i64,
    pub command: String,
    /// Its volume mounts: (destination, volume name).
    pub volumes: Vec<(String, String)>,
}

impl ObservedContainer {
    pub fn from_summary(s: &ContainerSummary) -> ObservedContainer {
        let label = |k: &str| s.labels.get(k).cloned().unwrap_or_default();
        let image_id = if s.image_id.is_empty() { label(labels::IMAGE) } else { s.image_id.clone() };
        ObservedContainer {
            id: s.id.clone(),
            name: s.names.first().map(|n| names::plain(n).to_string()).unwrap_or_default(),
            service: label(labels::SERVICE),
            number: label(labels::CONTAINER_NUMBER).parse().unwrap_or(0),
            state: s.state.clone(),
            status: s.status.clone(),
            config_hash: label(labels::CONFIG_HASH),
            image_id,
            image: s.image.clone(),
            oneoff: label(labels::ONEOFF).eq_ignore_ascii_case("true"),
            created: s.created,
            command: s.command.clone(),
            volumes: volume_mounts(s),
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(self.state.as_str(), "running" | "restarting")
    }
}

/// The volume mounts the list call reports (`Mounts` of Docker's summary: Type, Name, Destination).
fn volume_mounts(s: &ContainerSummary) -> Vec<(String, String)> {
    let Some(mounts) = s.extra.get("Mounts").and_then(|m| m.as_array()) else { return Vec::new() };
    mounts
        .iter()
        .filter(|m| m.get("Type").and_then(|t| t.as_str()) == Some("volume"))
        .filter_map(|m| {
            let destination = m.get("Destination")?.as_str()?;
            let name = m.get("Name")?.as_str()?;
            Some((destination.to_string(), name.to_string()))
        })
        .collect()
}

/// A volume of the project (by label).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObservedVolume {
    pub name: String,
    /// Its key in the compose file (`com.docker.compose.volume`).
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observed {
    /// Sorted by service, then container number.
    pub containers: Vec<ObservedContainer>,
    pub volumes: Vec<ObservedVolume>,
    /// Names of the project's networks (by label).
    pub networks: Vec<String>,
}

impl Observed {
    pub fn of_service<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a ObservedContainer> + 'a {
        self.containers.iter().filter(move |c| c.service == service && !c.oneoff)
    }
}

/// Every container of `project` (running or not).
pub async fn containers(client: &Client, project: &str) -> Result<Vec<ObservedContainer>, ControllerError> {
    let mut options = ListContainersOptions { all: true, ..Default::default() };
    options.filters.insert("label".into(), vec![labels::project_filter(project)]);
    let list = client.list_containers(Some(options)).await.map_err(ControllerError::engine("list containers"))?;
    let mut out: Vec<ObservedContainer> = list.iter().map(ObservedContainer::from_summary).collect();
    out.sort_by(|a, b| (&a.service, a.number, &a.name).cmp(&(&b.service, b.number, &b.name)));
    Ok(out)
}

/// Every volume labelled with `project`.
pub async fn volumes(client: &Client, project: &str) -> Result<Vec<ObservedVolume>, ControllerError> {
    let mut options = ListVolumesOptions::default();
    options.filters.insert("label".into(), vec![labels::project_filter(project)]);
    let list = client.list_volumes(Some(options)).await.map_err(ControllerError::engine("list volumes"))?;
    let mut out: Vec<ObservedVolume> = list
        .volumes
        .iter()
        .map(|v| ObservedVolume {
            name: v.name.clone(),
            key: v.labels.get(labels::VOLUME).cloned().unwrap_or_default(),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Names of the networks labelled with `project`.
pub async fn networks(client: &Client, project: &str) -> Result<Vec<String>, ControllerError> {
    let filters = std::collections::HashMap::from([("label".to_string(), vec![labels::project_filter(project)])]);
    let list = client.list_networks(&filters).await.map_err(ControllerError::engine("list networks"))?;
    let mut out: Vec<String> = list.into_iter().map(|n| n.name).collect();
    out.sort();
    Ok(out)
}

/// Containers, volumes and networks of `project`, listed at once.
pub async fn observe(client: &Client, project: &str) -> Result<Observed, ControllerError> {
    let (containers, volumes, networks) =
        tokio::join!(containers(client, project), volumes(client, project), networks(client, project));
    Ok(Observed { containers: containers?, volumes: volumes?, networks: networks? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn summaries_become_observed_containers() {
        let s = ContainerSummary {
            id: "abc".into(),
            names: vec!["/p-web-2".into()],
            image: "bb".into(),
            state: "exited".into(),
            labels: BTreeMap::from([
                (labels::SERVICE.to_string(), "web".to_string()),
                (labels::CONTAINER_NUMBER.to_string(), "2".to_string()),
                (labels::CONFIG_HASH.to_string(), "h".to_string()),
                (labels::IMAGE.to_string(), "sha256:1".to_string()),
                (labels::ONEOFF.to_string(), "False".to_string()),
            ]),
            ..Default::default()
        };
        let o = ObservedContainer::from_summary(&s);
        assert_eq!((o.name.as_str(), o.service.as_str(), o.number), ("p-web-2", "web", 2));
        assert_eq!((o.config_hash.as_str(), o.image_id.as_str(), o.oneoff), ("h", "sha256:1", false));
        assert!(!o.is_running());
        let mut with_mounts = s.clone();
        with_mounts.extra.insert(
            "Mounts".into(),
            serde_json::json!([
                {"Type": "volume", "Name": "v1", "Destination": "/data"},
                {"Type": "bind", "Source": "/srv", "Destination": "/srv"}
            ]),
        );
        assert_eq!(ObservedContainer::from_summary(&with_mounts).volumes, [("/data".to_string(), "v1".to_string())]);
        // A label that is not a number is container number 0, never a panic.
        let mut bad = s.clone();
        bad.labels.insert(labels::CONTAINER_NUMBER.into(), "x".into());
        assert_eq!(ObservedContainer::from_summary(&bad).number, 0);
    }
}
