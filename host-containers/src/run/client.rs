//! The calls `host-ctr run` makes to containerd's gRPC API, one method
//! each, on top of the `containerd-client` crate's generated clients.
//!
//! Every request carries the namespace and, while an image is imported,
//! a lease (containerd's garbage collector keeps what a lease holds even
//! before an image refers to it). Errors name the call and what it was
//! about, and keep containerd's status.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use containerd_client::services::v1::container::Runtime;
use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::diff_client::DiffClient;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::leases_client::LeasesClient;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::snapshots::{
    CommitSnapshotRequest, PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest,
};
use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::version_client::VersionClient;
use containerd_client::services::v1::{
    ApplyRequest, Container, CreateContainerRequest, CreateImageRequest, CreateRequest,
    CreateTaskRequest, DeleteContainerRequest, DeleteRequest, DeleteTaskRequest, GetRequest, Image,
    InfoRequest, KillRequest, StartRequest, UpdateImageRequest, UpdateRequest, WaitRequest,
    WriteAction, WriteContentRequest,
};
use containerd_client::tonic::metadata::{Ascii, MetadataValue};
use containerd_client::tonic::transport::Channel;
use containerd_client::tonic::{Code, Request, Status};
use containerd_client::types::{Descriptor, Mount};

use crate::archive::{Archive, Blob};

/// The snapshotter every host container's layers and root live in.
pub const SNAPSHOTTER: &str = "overlayfs";
/// The shim that runs the containers.
pub const RUNTIME: &str = "io.containerd.runc.v2";
/// What an `Any` holding an OCI runtime spec is called (containerd's
/// typeurl registration of `specs.Spec`).
pub const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
/// How much of a blob one write message carries.
const CHUNK: usize = 1 << 20;
/// How long an import's lease protects what it wrote if `host-ctr` dies
/// before it ends the lease.
const LEASE_EXPIRY: Duration = Duration::from_secs(3600);

/// A call to containerd failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket could not be reached.
    #[error("cannot connect to containerd at {}", path.display())]
    Connect {
        /// The socket.
        path: PathBuf,
        /// What the transport said.
        #[source]
        source: containerd_client::tonic::transport::Error,
    },
    /// containerd answered a call with an error.
    #[error("containerd {call} {what}: {}: {}", code_name(status.code()), status.message())]
    Call {
        /// The API call, `Tasks.Create`.
        call: &'static str,
        /// What it was about.
        what: String,
        /// containerd's answer.
        status: Status,
    },
    /// A blob could not be read from the archive while it was sent.
    #[error("cannot read {digest} from {}", archive.display())]
    Read {
        /// The archive.
        archive: PathBuf,
        /// The blob.
        digest: String,
        /// The read error.
        #[source]
        source: std::io::Error,
    },
    /// Unpacking a layer gave another uncompressed digest than the image's
    /// configuration declares.
    #[error("layer {layer} unpacked to {got}, the image declares {expected}")]
    DiffId {
        /// The layer.
        layer: String,
        /// What containerd computed.
        got: String,
        /// The config's diff ID.
        expected: String,
    },
}

impl ClientError {
    /// containerd's status code, if it answered.
    pub fn code(&self) -> Option<Code> {
        match self {
            ClientError::Call { status, .. } => Some(status.code()),
            _ => None,
        }
    }

    /// Whether containerd is unreachable (not running, restarting), as
    /// opposed to having refused the call.
    pub fn is_unavailable(&self) -> bool {
        match self {
            ClientError::Connect { .. } => true,
            ClientError::Call { status, .. } => {
                matches!(
                    status.code(),
                    Code::Unavailable | Code::Unknown | Code::Cancelled
                )
            }
            _ => false,
        }
    }
}

/// gRPC's name for a status code, as containerd's own errors print it.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::NotFound => "not found",
        Code::AlreadyExists => "already exists",
        Code::FailedPrecondition => "failed precondition",
        Code::InvalidArgument => "invalid argument",
        Code::Unavailable => "unavailable",
        Code::DeadlineExceeded => "deadline exceeded",
        Code::PermissionDenied => "permission denied",
        Code::Internal => "internal",
        _ => "error",
    }
}

/// A connection to containerd in one namespace.
#[derive(Debug, Clone)]
pub struct Client {
    channel: Channel,
    namespace: MetadataValue<Ascii>,
    lease: Option<MetadataValue<Ascii>>,
}

/// Wraps a message into a request with the client's namespace and lease.
macro_rules! req {
    ($client:expr, $msg:expr) => {{
        let mut request = Request::new($msg);
        let md = request.metadata_mut();
        md.insert("containerd-namespace", $client.namespace.clone());
        if let Some(lease) = &$client.lease {
            md.insert("containerd-lease", lease.clone());
        }
        request
    }};
}

/// Builds a [`ClientError::Call`] for `call` about `what`.
fn failed(call: &'static str, what: impl Into<String>) -> impl FnOnce(Status) -> ClientError {
    let what = what.into();
    move |status| ClientError::Call { call, what, status }
}

/// Whether a call failed because its object does not exist.
fn not_found<T>(result: &Result<T, ClientError>) -> bool {
    matches!(result, Err(e) if e.code() == Some(Code::NotFound))
}

impl Client {
    /// Connects to the socket at `path`, in `namespace` (a namespace is a
    /// plain name: letters, digits, `-`, `_`, `.`).
    pub async fn connect(path: &Path, namespace: &str) -> Result<Client, ClientError> {
        let channel =
            containerd_client::connect(path)
                .await
                .map_err(|source| ClientError::Connect {
                    path: path.to_owned(),
                    source,
                })?;
        let namespace = MetadataValue::try_from(namespace).map_err(|_| ClientError::Call {
            call: "namespace",
            what: namespace.to_owned(),
            status: Status::invalid_argument("not a valid header value"),
        })?;
        Ok(Client {
            channel,
            namespace,
            lease: None,
        })
    }

    /// containerd's version (`Version.Version`).
    pub async fn version(&self) -> Result<String, ClientError> {
        let reply = VersionClient::new(self.channel.clone())
            .version(req!(self, ()))
            .await
            .map_err(failed("Version.Version", ""))?;
        Ok(reply.into_inner().version)
    }

    /// Starts a lease that expires on its own after an hour; until
    /// [`Client::end_lease`], every call made through this client adds
    /// what it creates to the lease.
    pub async fn begin_lease(&mut self, id: &str) -> Result<(), ClientError> {
        let expire = humantime::format_rfc3339_seconds(SystemTime::now() + LEASE_EXPIRY);
        let labels = HashMap::from([("containerd.io/gc.expire".to_owned(), expire.to_string())]);
        LeasesClient::new(self.channel.clone())
            .create(req!(
                self,
                CreateRequest {
                    id: id.to_owned(),
                    labels,
                }
            ))
            .await
            .map_err(failed("Leases.Create", id))?;
        self.lease = Some(MetadataValue::try_from(id).map_err(|_| ClientError::Call {
            call: "Leases.Create",
            what: id.to_owned(),
            status: Status::invalid_argument("not a valid header value"),
        })?);
        Ok(())
    }

    /// Ends the lease: what it held is now kept only if something refers
    /// to it.
    pub async fn end_lease(&mut self, id: &str) -> Result<(), ClientError> {
        self.lease = None;
        LeasesClient::new(self.channel.clone())
            .delete(req!(
                self,
                DeleteRequest {
                    id: id.to_owned(),
                    sync: false,
                }
            ))
            .await
            .map_err(failed("Leases.Delete", id))?;
        Ok(())
    }

    /// Whether the content store holds `digest`.
    pub async fn has_content(&self, digest: &str) -> Result<bool, ClientError> {
        let result = ContentClient::new(self.channel.clone())
            .info(req!(
                self,
                InfoRequest {
                    digest: digest.to_owned(),
                }
            ))
            .await
            .map_err(failed("Content.Info", digest));
        if not_found(&result) {
            return Ok(false);
        }
        result.map(|_| true)
    }

    /// Streams `blob` from the archive into the content store, which checks
    /// its size and digest at commit, with `labels` (garbage collection
    /// references) on it.
    pub async fn write_blob(
        &self,
        archive: &Archive,
        blob: &Blob,
        write_ref: &str,
        labels: HashMap<String, String>,
    ) -> Result<(), ClientError> {
        let read_error = |source| ClientError::Read {
            archive: archive.path.clone(),
            digest: blob.digest.clone(),
            source,
        };
        let reader = archive
            .blob_reader(blob)
            .map_err(|e| read_error(std::io::Error::other(e.to_string())))?;
        let total = i64::try_from(blob.size).unwrap_or(i64::MAX);
        let requests = BlobRequests {
            reader: Box::new(reader),
            write_ref: write_ref.to_owned(),
            expected: blob.digest.clone(),
            total,
            offset: 0,
            labels: Some(labels),
            error: None,
        };
        let (sender, receiver) = std::sync::mpsc::channel();
        let stream = futures_util::stream::iter(requests.with_errors(sender));
        let mut responses = ContentClient::new(self.channel.clone())
            .write(req!(self, stream))
            .await
            .map_err(failed("Content.Write", &blob.digest))?
            .into_inner();
        loop {
            match responses.message().await {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(status) => {
                    if let Ok(e) = receiver.try_recv() {
                        return Err(read_error(e));
                    }
                    return Err(failed("Content.Write", &blob.digest)(status));
                }
            }
        }
        if let Ok(e) = receiver.try_recv() {
            return Err(read_error(e));
        }
        Ok(())
    }

    /// Sets `labels` on content already in the store.
    pub async fn label_content(
        &self,
        digest: &str,
        labels: HashMap<String, String>,
    ) -> Result<(), ClientError> {
        let paths = labels.keys().map(|k| format!("labels.{k}")).collect();
        ContentClient::new(self.channel.clone())
            .update(req!(
                self,
                UpdateRequest {
                    info: Some(containerd_client::services::v1::Info {
                        digest: digest.to_owned(),
                        labels,
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask { paths }),
                }
            ))
            .await
            .map_err(failed("Content.Update", digest))?;
        Ok(())
    }

    /// Creates or moves the image `name` to point at `manifest`.
    pub async fn put_image(&self, name: &str, manifest: &Blob) -> Result<(), ClientError> {
        let image = Image {
            name: name.to_owned(),
            target: Some(descriptor(manifest)),
            ..Default::default()
        };
        let mut images = ImagesClient::new(self.channel.clone());
        let created = images
            .create(req!(
                self,
                CreateImageRequest {
                    image: Some(image.clone()),
                    source_date_epoch: None,
                }
            ))
            .await
            .map_err(failed("Images.Create", name));
        match created {
            Err(e) if e.code() == Some(Code::AlreadyExists) => {
                images
                    .update(req!(
                        self,
                        UpdateImageRequest {
                            image: Some(image),
                            update_mask: Some(prost_types::FieldMask {
                                paths: vec!["target".to_owned()],
                            }),
                            source_date_epoch: None,
                        }
                    ))
                    .await
                    .map_err(failed("Images.Update", name))?;
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }

    /// Whether the snapshotter has a snapshot named `key`.
    pub async fn has_snapshot(&self, key: &str) -> Result<bool, ClientError> {
        let result = SnapshotsClient::new(self.channel.clone())
            .stat(req!(
                self,
                StatSnapshotRequest {
                    snapshotter: SNAPSHOTTER.to_owned(),
                    key: key.to_owned(),
                }
            ))
            .await
            .map_err(failed("Snapshots.Stat", key));
        if not_found(&result) {
            return Ok(false);
        }
        result.map(|_| true)
    }

    /// Prepares an active snapshot `key` on `parent` ("" for none) and
    /// returns how to mount it.
    pub async fn prepare_snapshot(
        &self,
        key: &str,
        parent: &str,
    ) -> Result<Vec<Mount>, ClientError> {
        let reply = SnapshotsClient::new(self.channel.clone())
            .prepare(req!(
                self,
                PrepareSnapshotRequest {
                    snapshotter: SNAPSHOTTER.to_owned(),
                    key: key.to_owned(),
                    parent: parent.to_owned(),
                    labels: HashMap::new(),
                }
            ))
            .await
            .map_err(failed("Snapshots.Prepare", key))?;
        Ok(reply.into_inner().mounts)
    }

    /// Commits the active snapshot `key` as `name`.
    pub async fn commit_snapshot(&self, name: &str, key: &str) -> Result<(), ClientError> {
        SnapshotsClient::new(self.channel.clone())
            .commit(req!(
                self,
                CommitSnapshotRequest {
                    snapshotter: SNAPSHOTTER.to_owned(),
                    name: name.to_owned(),
                    key: key.to_owned(),
                    labels: HashMap::new(),
                }
            ))
            .await
            .map_err(failed("Snapshots.Commit", name))?;
        Ok(())
    }

    /// Removes snapshot `key`; a missing one is fine.
    pub async fn remove_snapshot(&self, key: &str) -> Result<(), ClientError> {
        let result = SnapshotsClient::new(self.channel.clone())
            .remove(req!(
                self,
                RemoveSnapshotRequest {
                    snapshotter: SNAPSHOTTER.to_owned(),
                    key: key.to_owned(),
                }
            ))
            .await
            .map_err(failed("Snapshots.Remove", key));
        if not_found(&result) {
            return Ok(());
        }
        result.map(|_| ())
    }

    /// Applies the layer `blob` (from the content store) onto `mounts` and
    /// checks the uncompressed digest containerd computed.
    pub async fn apply_layer(
        &self,
        blob: &Blob,
        diff_id: &str,
        mounts: Vec<Mount>,
    ) -> Result<(), ClientError> {
        let reply = DiffClient::new(self.channel.clone())
            .apply(req!(
                self,
                ApplyRequest {
                    diff: Some(descriptor(blob)),
                    mounts,
                    payloads: HashMap::new(),
                    sync_fs: true,
                }
            ))
            .await
            .map_err(failed("Diff.Apply", &blob.digest))?;
        let got = reply
            .into_inner()
            .applied
            .map(|d| d.digest)
            .unwrap_or_default();
        if got != diff_id {
            return Err(ClientError::DiffId {
                layer: blob.digest.clone(),
                got,
                expected: diff_id.to_owned(),
            });
        }
        Ok(())
    }

    /// Creates container `id` from `spec` (JSON) on snapshot `id`.
    pub async fn create_container(
        &self,
        id: &str,
        image: &str,
        spec: Vec<u8>,
    ) -> Result<(), ClientError> {
        let container = Container {
            id: id.to_owned(),
            image: image.to_owned(),
            runtime: Some(Runtime {
                name: RUNTIME.to_owned(),
                options: None,
            }),
            spec: Some(prost_types::Any {
                type_url: SPEC_TYPE_URL.to_owned(),
                value: spec,
            }),
            snapshotter: SNAPSHOTTER.to_owned(),
            snapshot_key: id.to_owned(),
            labels: HashMap::from([("liftoff.host-ctr".to_owned(), "true".to_owned())]),
            ..Default::default()
        };
        ContainersClient::new(self.channel.clone())
            .create(req!(
                self,
                CreateContainerRequest {
                    container: Some(container),
                }
            ))
            .await
            .map_err(failed("Containers.Create", id))?;
        Ok(())
    }

    /// Deletes container `id`; a missing one is fine.
    pub async fn delete_container(&self, id: &str) -> Result<(), ClientError> {
        let result = ContainersClient::new(self.channel.clone())
            .delete(req!(self, DeleteContainerRequest { id: id.to_owned() }))
            .await
            .map_err(failed("Containers.Delete", id));
        if not_found(&result) {
            return Ok(());
        }
        result.map(|_| ())
    }

    /// Creates the task of container `id` on `rootfs`, its output going to
    /// the FIFOs `stdout` and `stderr`; returns its pid.
    pub async fn create_task(
        &self,
        id: &str,
        rootfs: Vec<Mount>,
        stdout: &Path,
        stderr: &Path,
    ) -> Result<u32, ClientError> {
        let reply = TasksClient::new(self.channel.clone())
            .create(req!(
                self,
                CreateTaskRequest {
                    container_id: id.to_owned(),
                    rootfs,
                    stdout: stdout.to_string_lossy().into_owned(),
                    stderr: stderr.to_string_lossy().into_owned(),
                    ..Default::default()
                }
            ))
            .await
            .map_err(failed("Tasks.Create", id))?;
        Ok(reply.into_inner().pid)
    }

    /// Starts the task of container `id`.
    pub async fn start_task(&self, id: &str) -> Result<u32, ClientError> {
        let reply = TasksClient::new(self.channel.clone())
            .start(req!(
                self,
                StartRequest {
                    container_id: id.to_owned(),
                    exec_id: String::new(),
                }
            ))
            .await
            .map_err(failed("Tasks.Start", id))?;
        Ok(reply.into_inner().pid)
    }

    /// The task's pid and status (`containerd.v1.types.Status`), or `None`
    /// if container `id` has no task.
    pub async fn task(&self, id: &str) -> Result<Option<(u32, i32)>, ClientError> {
        let result = TasksClient::new(self.channel.clone())
            .get(req!(
                self,
                GetRequest {
                    container_id: id.to_owned(),
                    exec_id: String::new(),
                }
            ))
            .await
            .map_err(failed("Tasks.Get", id));
        if not_found(&result) {
            return Ok(None);
        }
        Ok(result?.into_inner().process.map(|p| (p.pid, p.status)))
    }

    /// Waits for the task of container `id` to exit; its exit status.
    pub async fn wait_task(&self, id: &str) -> Result<u32, ClientError> {
        let reply = TasksClient::new(self.channel.clone())
            .wait(req!(
                self,
                WaitRequest {
                    container_id: id.to_owned(),
                    exec_id: String::new(),
                }
            ))
            .await
            .map_err(failed("Tasks.Wait", id))?;
        Ok(reply.into_inner().exit_status)
    }

    /// Sends `signal` to the task's init process, or to all its processes.
    pub async fn kill_task(&self, id: &str, signal: u32, all: bool) -> Result<(), ClientError> {
        let result = TasksClient::new(self.channel.clone())
            .kill(req!(
                self,
                KillRequest {
                    container_id: id.to_owned(),
                    exec_id: String::new(),
                    signal,
                    all,
                }
            ))
            .await
            .map_err(failed("Tasks.Kill", id));
        if not_found(&result) {
            return Ok(());
        }
        result.map(|_| ())
    }

    /// Deletes the (stopped) task of container `id`; a missing one is
    /// fine.
    pub async fn delete_task(&self, id: &str) -> Result<(), ClientError> {
        let result = TasksClient::new(self.channel.clone())
            .delete(req!(
                self,
                DeleteTaskRequest {
                    container_id: id.to_owned(),
                }
            ))
            .await
            .map_err(failed("Tasks.Delete", id));
        if not_found(&result) {
            return Ok(());
        }
        result.map(|_| ())
    }
}

/// containerd's descriptor of an archive blob.
fn descriptor(blob: &Blob) -> Descriptor {
    Descriptor {
        media_type: blob.media_type.clone(),
        digest: blob.digest.clone(),
        size: i64::try_from(blob.size).unwrap_or(i64::MAX),
        annotations: HashMap::new(),
    }
}

/// The messages of one `Content.Write`: the blob in [`CHUNK`]s, the last
/// one committing it with the labels. A read error ends the stream early
/// (containerd then refuses the short write) and is handed back through
/// the channel, so the caller reports the read, not containerd's answer.
struct BlobRequests {
    reader: Box<dyn Read + Send>,
    write_ref: String,
    expected: String,
    total: i64,
    offset: i64,
    labels: Option<HashMap<String, String>>,
    error: Option<std::sync::mpsc::Sender<std::io::Error>>,
}

impl BlobRequests {
    fn with_errors(mut self, sender: std::sync::mpsc::Sender<std::io::Error>) -> Self {
        self.error = Some(sender);
        self
    }
}

impl Iterator for BlobRequests {
    type Item = WriteContentRequest;

    fn next(&mut self) -> Option<WriteContentRequest> {
        let labels = self.labels.take()?;
        let mut data = vec![0u8; CHUNK];
        let mut len = 0;
        while len < CHUNK {
            match self.reader.read(&mut data[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if let Some(sender) = &self.error {
                        let _ = sender.send(e);
                    }
                    return None;
                }
            }
        }
        data.truncate(len);
        let offset = self.offset;
        self.offset += i64::try_from(len).unwrap_or(i64::MAX);
        let last = len < CHUNK || self.offset >= self.total;
        let (action, labels) = if last {
            (WriteAction::Commit, labels)
        } else {
            self.labels = Some(labels);
            (WriteAction::Write, HashMap::new())
        };
        Some(WriteContentRequest {
            action: action as i32,
            r#ref: self.write_ref.clone(),
            total: self.total,
            expected: self.expected.clone(),
            offset,
            data,
            labels,
        })
    }
}
