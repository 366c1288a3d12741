//! Create, start and delete with youki's libcontainer, in the helper process.

use std::path::Path;

use libcontainer::container::Container;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::error::LibcontainerError;
use libcontainer::syscall::syscall::SyscallType;

use super::failed;
use crate::cli::{CreateArgs, DeleteArgs};
use crate::error::chain;
use crate::protocol::{CreateResult, FailureStage};

pub(super) fn create(args: &CreateArgs) -> CreateResult {
    match create_and_start(args) {
        Ok(init_pid) => CreateResult::Started { init_pid },
        Err((stage, err)) => failed(stage, chain(&err)),
    }
}

fn create_and_start(args: &CreateArgs) -> Result<i32, (FailureStage, LibcontainerError)> {
    let setup = |e| (FailureStage::Setup, e);
    let mut container = ContainerBuilder::new(args.id.clone(), SyscallType::Linux)
        .validate_id()
        .map_err(setup)?
        .with_root_path(&args.runtime_root)
        .map_err(setup)?
        .with_console_socket(args.console_socket.as_deref().map(Path::to_path_buf))
        .as_init(&args.bundle)
        .with_systemd(false)
        .with_detach(true)
        // The intermediate and init processes become children of our parent, the monitor, which reaps them.
        .as_sibling(true)
        .build()
        .map_err(|e| (FailureStage::Create, e))?;
    if let Err(e) = container.start() {
        let _ = container.delete(true);
        return Err((FailureStage::Start, e));
    }
    container.pid().map(|p| p.as_raw()).ok_or((
        FailureStage::Start,
        LibcontainerError::InvalidInput(format!("container {} started without a pid", args.id)),
    ))
}

pub(super) fn delete(args: &DeleteArgs) -> Result<(), String> {
    let dir = args.runtime_root.join(&args.id);
    if !dir.exists() {
        return Ok(());
    }
    let mut container =
        Container::load(dir).map_err(|e| format!("failed to load container {}: {}", args.id, chain(&e)))?;
    container.delete(true).map_err(|e| format!("failed to delete container {}: {}", args.id, chain(&e)))
}
