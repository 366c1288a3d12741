//! Container lifecycle in berthd: the Docker-API configuration of a container ([`config`]) and the records of
//! all containers with their state ([`record`]). Running them goes through `berth-shim` (one per container).

pub mod cgroups;
pub mod config;
pub mod copy;
pub mod exec;
pub mod health;
pub mod lifecycle;
pub mod record;
pub mod restart;
