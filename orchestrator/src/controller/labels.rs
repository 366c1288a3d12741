//! The labels Docker Compose puts on what it creates; berth sets the same ones so existing tooling (and
//! `docker compose ps` pointed at berthd) recognises berth's containers and volumes.

pub const PROJECT: &str = "com.docker.compose.project";
pub const SERVICE: &str = "com.docker.compose.service";
pub const CONTAINER_NUMBER: &str = "com.docker.compose.container-number";
pub const ONEOFF: &str = "com.docker.compose.oneoff";
pub const CONFIG_HASH: &str = "com.docker.compose.config-hash";
pub const DEPENDS_ON: &str = "com.docker.compose.depends_on";
/// The image id (`sha256:…`) the container was created from, as Docker Compose records it.
pub const IMAGE: &str = "com.docker.compose.image";
pub const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
pub const CONFIG_FILES: &str = "com.docker.compose.project.config_files";
pub const VERSION: &str = "com.docker.compose.version";
pub const VOLUME: &str = "com.docker.compose.volume";
pub const NETWORK: &str = "com.docker.compose.network";

/// The version berth writes in `com.docker.compose.version`: the Compose release whose behaviour it follows.
pub const COMPOSE_VERSION: &str = "2.30.0";

/// `label` filter value selecting everything of one project.
pub fn project_filter(project: &str) -> String {
    format!("{PROJECT}={project}")
}
