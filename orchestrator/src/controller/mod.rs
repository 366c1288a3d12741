//! The reconciling controller: level-triggered and idempotent. Observe the project's containers and volumes by
//! label ([`observe`]), compute the desired state from the loaded project ([`desired`], with the create bodies
//! in [`spec`], [`mounts`], [`network`]), diff them ([`diff`]), build a DAG of steps ([`plan`]) and run it in
//! parallel against berthd ([`execute`]), honouring `depends_on` conditions ([`conditions`]). The compose
//! commands that act on existing containers (`stop`, `pause`, …) are in [`ops`].

pub mod conditions;
pub mod desired;
pub mod diff;
pub mod execute;
pub mod labels;
pub mod mounts;
pub mod names;
pub mod network;
pub mod observe;
pub mod ops;
pub mod plan;
pub mod progress;
pub mod spec;
pub mod up;

use berth_engine::client::ClientError;

/// A service the controller cannot turn into a container spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("service {0:?} has neither an image nor a build section")]
    NoImage(String),
    #[error("service {service:?}: {message}")]
    Invalid { service: String, message: String },
    #[error("{0}")]
    Graph(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("cannot {action}: {source}")]
    Engine { action: String, source: ClientError },
    /// A service whose containers could not be brought up: the engine's error and the last lines of its log.
    #[error("service {service:?} failed: {message}{}", logs_suffix(.logs))]
    Service { service: String, message: String, logs: Vec<String> },
    #[error(
        "service {service:?}: image {image:?} is not in berthd's store (berth does not pull by itself here: \
             use `berth image pull {image}` or `berth image import`)"
    )]
    MissingImage { service: String, image: String },
    #[error("{failed} of {total} steps failed")]
    Failed { failed: usize, total: usize },
}

fn logs_suffix(logs: &[String]) -> String {
    if logs.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n  last log lines:");
    for l in logs {
        out.push_str("\n    ");
        out.push_str(l);
    }
    out
}

impl ControllerError {
    /// A `map_err` adapter naming what was being done.
    pub fn engine(action: impl Into<String>) -> impl FnOnce(ClientError) -> ControllerError {
        let action = action.into();
        move |source| ControllerError::Engine { action, source }
    }
}
