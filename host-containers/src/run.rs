//! `host-ctr run`: one host container's life through containerd's gRPC
//! API.
//!
//! 1. The archive is read and every blob checked against its digest
//!    ([`crate::archive`]) before containerd sees any of it, and the
//!    runtime spec is built ([`crate::spec`]): a bad archive or image
//!    config fails here, naming the file.
//! 2. A container of the same name left by an earlier run (`host-ctr`
//!    killed, the machine reset) is removed: task, container, snapshot.
//! 3. Import, under a lease: the blobs that containerd's content store
//!    lacks are written (with the garbage-collection labels that tie the
//!    manifest to its config and layers, and the config to its unpacked
//!    snapshot), the image `liftoff.local/host-containers/NAME:latest`
//!    points at the manifest, and each layer not yet unpacked is applied
//!    onto its parent and committed under its chain ID.
//! 4. The container's snapshot, the container (runc shim, the spec), the
//!    FIFOs for its output, the task; start; `READY=1` to liftoff.
//! 5. Wait for the task. If containerd goes away (restarted by liftoff),
//!    the task lives on under its shim: `host-ctr` reconnects and waits
//!    again. When the task exits, its exit status becomes `host-ctr`'s.
//! 6. On SIGTERM (or SIGINT): SIGTERM to the task, SIGKILL to all its
//!    processes after the stop timeout, then delete the task, the
//!    container and its snapshot. A signal during steps 2–4 stops there
//!    and removes what was made.
//!
//! The image and its unpacked layers stay in containerd between runs, so
//! a restart does not import again; the container's own writable layer is
//! removed every time (persistent data belongs in the storage folder).

mod client;
mod notify;
mod output;

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use containerd_client::tonic::Code;
use tokio::signal::unix::{SignalKind, signal};

pub use client::{Client, ClientError, RUNTIME, SNAPSHOTTER, SPEC_TYPE_URL};
pub use output::FIFO_DIR;

use crate::archive::{Archive, ArchiveError};
use crate::spec::{SpecError, SpecOptions, runtime_spec};
use output::Output;

/// The host containers' containerd (the `host-containerd` unit).
pub const SOCKET: &str = "/run/host-containerd/containerd.sock";
/// Where each host container's persistent storage folder is made.
pub const STORAGE_ROOT: &str = "/local/host-containers";
/// The containerd namespace host containers live in (their containerd
/// runs nothing else).
pub const NAMESPACE: &str = "default";
/// How long the task gets between SIGTERM and SIGKILL: well inside the
/// unit's `stop_timeout` ([`crate::unit::STOP_TIMEOUT`]), so that the task
/// is also deleted before liftoff's own SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long `host-ctr` keeps trying to reach a containerd that went away
/// while the task ran, before it gives up (and liftoff restarts it).
pub const RECONNECT_LIMIT: Duration = Duration::from_secs(300);
/// How long a SIGKILLed task gets to be reported stopped.
const KILL_WAIT: Duration = Duration::from_secs(10);
/// `containerd.v1.types.Status.STOPPED`.
const STATUS_STOPPED: i32 = 3;
/// Where the kernel says SELinux is on (the runtime spec then carries the
/// container's domain).
const SELINUX_ENFORCE: &str = "/sys/fs/selinux/enforce";

/// What `host-ctr run` is told.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The host container (container ID, hostname, unit name).
    pub name: String,
    /// Its OCI archive.
    pub source: PathBuf,
    /// Privileged mode.
    pub superpowered: bool,
    /// containerd's socket.
    pub socket: PathBuf,
    /// The folder holding every host container's storage folder.
    pub storage_root: PathBuf,
    /// SIGTERM to SIGKILL.
    pub stop_timeout: Duration,
}

impl RunOptions {
    /// The defaults for host container `name` from `source`.
    pub fn new(name: impl Into<String>, source: impl Into<PathBuf>) -> RunOptions {
        RunOptions {
            name: name.into(),
            source: source.into(),
            superpowered: false,
            socket: PathBuf::from(SOCKET),
            storage_root: PathBuf::from(STORAGE_ROOT),
            stop_timeout: STOP_TIMEOUT,
        }
    }
}

/// Why `host-ctr run` failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The archive is missing or bad.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The image config cannot make a runtime spec.
    #[error("{}", archive.display())]
    Spec {
        /// The archive the config came from.
        archive: PathBuf,
        /// Why.
        #[source]
        source: SpecError,
    },
    /// containerd refused a call or cannot be reached.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A file or folder `host-ctr` makes could not be made.
    #[error("cannot create {}", path.display())]
    Create {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The signal handlers could not be installed.
    #[error("cannot handle signals")]
    Signals(#[source] std::io::Error),
    /// The runtime spec could not be written as JSON.
    #[error("cannot encode the runtime spec")]
    Encode(#[source] serde_json::Error),
    /// containerd came back without the task.
    #[error("containerd lost the task of {name}")]
    TaskLost {
        /// The container.
        name: String,
    },
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Stopped on SIGTERM/SIGINT; task, container and snapshot removed.
    Stopped,
    /// The task exited by itself with this status.
    Exited(u32),
}

impl Ended {
    /// `host-ctr`'s exit status: 0 when stopped, the task's exit status
    /// (255 if it does not fit) when it exited.
    pub fn exit_code(self) -> u8 {
        match self {
            Ended::Stopped => 0,
            Ended::Exited(status) => u8::try_from(status).unwrap_or(255),
        }
    }
}

/// Runs the host container until it exits or `host-ctr` is told to stop.
/// Progress goes to stderr.
pub fn run(options: &RunOptions) -> Result<Ended, RunError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RunError::Signals)?;
    runtime.block_on(run_async(options))
}

/// Writes one progress line to stderr (liftoff sends it to the kernel
/// log, tagged with the unit); a failing write is not a reason to stop.
macro_rules! say {
    ($($arg:tt)*) => {{
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, $($arg)*);
        let _ = err.flush();
    }};
}

async fn run_async(options: &RunOptions) -> Result<Ended, RunError> {
    let name = options.name.as_str();
    let mut sigterm = signal(SignalKind::terminate()).map_err(RunError::Signals)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(RunError::Signals)?;

    // 1. Everything that can be checked without containerd.
    let archive = Archive::open(&options.source)?;
    let storage = options.storage_root.join(name);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(&storage)
        .map_err(|source| RunError::Create {
            path: storage.clone(),
            source,
        })?;
    let selinux = Path::new(SELINUX_ENFORCE).exists();
    let spec = runtime_spec(&SpecOptions {
        name,
        superpowered: options.superpowered,
        storage: &storage,
        process: &archive.process,
        selinux,
    })
    .map_err(|source| RunError::Spec {
        archive: options.source.clone(),
        source,
    })?;
    let spec = serde_json::to_vec(&spec).map_err(RunError::Encode)?;

    // 2–4. containerd.
    let client = Client::connect(&options.socket, NAMESPACE).await?;
    let setup = async {
        remove(&client, name).await?;
        let image = import(&client, name, &archive).await?;
        create(&client, name, &image, &archive, spec).await
    };
    let output = tokio::select! {
        made = setup => made?,
        _ = sigterm.recv() => return stopped_early(&client, name).await,
        _ = sigint.recv() => return stopped_early(&client, name).await,
    };
    let pid = client.start_task(name).await?;
    say!(
        "host container {name} started: pid {pid}{}",
        if options.superpowered {
            ", superpowered"
        } else {
            ""
        }
    );
    notify::ready(pid);

    // 5–6. Its life.
    let mut client = client;
    let ended = tokio::select! {
        status = wait(&mut client, options) => status.map(Ended::Exited),
        _ = sigterm.recv() => stop(&mut client, options).await.map(|()| Ended::Stopped),
        _ = sigint.recv() => stop(&mut client, options).await.map(|()| Ended::Stopped),
    };
    let cleaned = clean(&client, name).await;
    output.close().await;
    let ended = ended?;
    // The task is over either way, and its status is what the unit must
    // see; what could not be deleted (containerd going away at that very
    // moment) is removed by the next run's step 2.
    if let Err(e) = cleaned {
        say!("cannot remove the task, container or snapshot of {name} now: {e}");
    }
    match ended {
        Ended::Stopped => say!("host container {name} stopped"),
        Ended::Exited(status) => say!("host container {name} exited with status {status}"),
    }
    Ok(ended)
}

/// A stop signal came before the task started: remove what was made.
async fn stopped_early(client: &Client, name: &str) -> Result<Ended, RunError> {
    say!("stop requested before {name} started; removing it");
    remove(client, name).await?;
    let _ = std::fs::remove_dir_all(Path::new(FIFO_DIR).join(name));
    Ok(Ended::Stopped)
}

/// Removes the task, container and snapshot named `name`, whatever state
/// an earlier run left them in.
async fn remove(client: &Client, name: &str) -> Result<(), RunError> {
    if let Some((pid, status)) = client.task(name).await? {
        say!("removing the task (pid {pid}) left by an earlier run of {name}");
        if status != STATUS_STOPPED {
            client.kill_task(name, 9, true).await?;
            let deadline = tokio::time::Instant::now() + KILL_WAIT;
            while let Some((_, status)) = client.task(name).await? {
                if status == STATUS_STOPPED || tokio::time::Instant::now() >= deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    clean(client, name).await
}

/// Deletes the (stopped) task, the container and its snapshot; what is
/// already gone is fine.
async fn clean(client: &Client, name: &str) -> Result<(), RunError> {
    client.delete_task(name).await?;
    client.delete_container(name).await?;
    client.remove_snapshot(name).await?;
    Ok(())
}

/// The image name a host container's image is kept under.
pub fn image_name(name: &str) -> String {
    format!("liftoff.local/host-containers/{name}:latest")
}

/// The garbage-collection label naming snapshot `chain` in the
/// snapshotter.
fn snapshot_ref_label() -> String {
    format!("containerd.io/gc.ref.snapshot.{SNAPSHOTTER}")
}

/// Imports and unpacks the archive's image; returns its name.
async fn import(client: &Client, name: &str, archive: &Archive) -> Result<String, RunError> {
    let mut client = client.clone();
    let lease = format!("host-ctr-{name}-{}", std::process::id());
    client.begin_lease(&lease).await?;
    let imported = import_leased(&client, name, archive).await;
    // The lease ends either way: on success the image holds everything.
    let ended = client.end_lease(&lease).await;
    let image = imported?;
    ended?;
    Ok(image)
}

async fn import_leased(client: &Client, name: &str, archive: &Archive) -> Result<String, RunError> {
    let chain = archive.chain_ids();
    let top = chain.last().cloned().unwrap_or_default();
    let mut written = 0;
    // Children first, so that a label never names missing content.
    let mut config_labels = HashMap::new();
    config_labels.insert(snapshot_ref_label(), top.clone());
    let mut manifest_labels = HashMap::new();
    manifest_labels.insert(
        "containerd.io/gc.ref.content.config".to_owned(),
        archive.config.digest.clone(),
    );
    for (i, layer) in archive.layers.iter().enumerate() {
        manifest_labels.insert(
            format!("containerd.io/gc.ref.content.l.{i}"),
            layer.digest.clone(),
        );
    }
    let blobs = archive.layers.iter().map(|b| (b, HashMap::new())).chain([
        (&archive.config, config_labels.clone()),
        (&archive.manifest, manifest_labels),
    ]);
    for (blob, labels) in blobs {
        if !client.has_content(&blob.digest).await? {
            let write_ref = format!("host-ctr-{name}-{}", blob.digest);
            match client
                .write_blob(archive, blob, &write_ref, labels.clone())
                .await
            {
                Ok(()) => written += 1,
                // Another host container's import wrote the same blob (a
                // shared layer) since the check: it is there, checked by
                // containerd against the same digest; only the labels are
                // ours to add.
                Err(e) if e.code() == Some(Code::AlreadyExists) => {
                    if !labels.is_empty() {
                        client.label_content(&blob.digest, labels).await?;
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    let image = image_name(name);
    client.put_image(&image, &archive.manifest).await?;

    let mut parent = String::new();
    let mut unpacked = 0;
    for (i, (layer, chain_id)) in archive.layers.iter().zip(&chain).enumerate() {
        if !client.has_snapshot(chain_id).await? {
            let key = format!("host-ctr-extract-{name}-{i}");
            client.remove_snapshot(&key).await?;
            let mounts = client.prepare_snapshot(&key, &parent).await?;
            let diff_id = archive.diff_ids.get(i).map(String::as_str).unwrap_or("");
            if let Err(e) = client.apply_layer(layer, diff_id, mounts).await {
                let _ = client.remove_snapshot(&key).await;
                return Err(e.into());
            }
            match client.commit_snapshot(chain_id, &key).await {
                Ok(()) => unpacked += 1,
                // Unpacked by another host container meanwhile: the same
                // chain ID is the same content.
                Err(e) if e.code() == Some(Code::AlreadyExists) => {
                    client.remove_snapshot(&key).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        parent.clone_from(chain_id);
    }
    // The config may have been in the store already, without the label
    // that keeps the unpacked layers.
    client
        .label_content(&archive.config.digest, config_labels)
        .await?;
    say!(
        "image {} from {}: {written} blob(s) imported, {unpacked} layer(s) unpacked",
        archive
            .reference
            .as_deref()
            .unwrap_or(&archive.manifest.digest),
        archive.path.display()
    );
    Ok(image)
}

/// The container's snapshot, the container, its output and its task.
async fn create(
    client: &Client,
    name: &str,
    image: &str,
    archive: &Archive,
    spec: Vec<u8>,
) -> Result<Output, RunError> {
    let top = archive.chain_ids().last().cloned().unwrap_or_default();
    let rootfs = client.prepare_snapshot(name, &top).await?;
    client.create_container(name, image, spec).await?;
    let fifo_dir = Path::new(FIFO_DIR);
    let output = Output::open(fifo_dir, name).map_err(|source| RunError::Create {
        path: fifo_dir.join(name),
        source,
    })?;
    let pid = client
        .create_task(name, rootfs, &output.stdout, &output.stderr)
        .await?;
    say!("task of {name} created: pid {pid}");
    Ok(output)
}

/// Waits for the task to exit, reconnecting while containerd is away.
async fn wait(client: &mut Client, options: &RunOptions) -> Result<u32, RunError> {
    let name = options.name.as_str();
    loop {
        match client.wait_task(name).await {
            Ok(status) => return Ok(status),
            Err(e) if e.is_unavailable() => {
                say!("lost containerd ({e}); the task runs on, reconnecting");
                *client = reconnect(options).await?;
                match client.task(name).await? {
                    Some((pid, _)) => {
                        say!("containerd is back; task of {name} still there: pid {pid}")
                    }
                    None => {
                        return Err(RunError::TaskLost {
                            name: name.to_owned(),
                        });
                    }
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Connects again, once a second, for up to [`RECONNECT_LIMIT`].
async fn reconnect(options: &RunOptions) -> Result<Client, RunError> {
    let deadline = tokio::time::Instant::now() + RECONNECT_LIMIT;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let attempt = async {
            let client = Client::connect(&options.socket, NAMESPACE).await?;
            client.version().await?;
            Ok::<_, ClientError>(client)
        };
        match attempt.await {
            Ok(client) => return Ok(client),
            Err(e) if e.is_unavailable() && tokio::time::Instant::now() < deadline => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// SIGTERM to the task, SIGKILL to all of it after the stop timeout.
async fn stop(client: &mut Client, options: &RunOptions) -> Result<(), RunError> {
    let name = options.name.as_str();
    say!("stopping host container {name}: SIGTERM to its task");
    client.kill_task(name, 15, false).await?;
    match tokio::time::timeout(options.stop_timeout, client.wait_task(name)).await {
        Ok(Ok(status)) => {
            say!("task of {name} exited with status {status}");
            return Ok(());
        }
        Ok(Err(e)) if e.code() == Some(Code::NotFound) => return Ok(()),
        Ok(Err(e)) => return Err(e.into()),
        Err(_) => {}
    }
    say!(
        "task of {name} still running after {}: SIGKILL to all its processes",
        humantime::format_duration(options.stop_timeout)
    );
    client.kill_task(name, 9, true).await?;
    if let Ok(result) = tokio::time::timeout(KILL_WAIT, client.wait_task(name)).await {
        result?;
    }
    Ok(())
}
