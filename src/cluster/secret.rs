//! The cluster secret, as RabbitMQ's Erlang cookie: every node of a cluster shares it,
//! clients attach it to each gRPC call and servers refuse calls without it.
//!
//! It lives in a file readable by its owner only; a missing file is created with random
//! content (mode 0600), so a single node just works and a cluster is formed by copying
//! the first node's file to the others. It is not encryption: gRPC here is plain-text
//! HTTP/2 on a trusted network, and the secret only keeps strangers and other clusters out.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use rand::Rng;
use tonic::metadata::AsciiMetadataValue;
use tonic::service::Interceptor;
use tonic::{Request, Status};
use tracing::warn;

/// The gRPC metadata key carrying the secret.
pub const SECRET_METADATA_KEY: &str = "x-warrenmq-secret";

/// Random bytes in a generated secret (written as hex).
const GENERATED_BYTES: usize = 32;

/// The shared secret of a cluster. Cheap to clone; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterSecret(Arc<str>);

impl fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterSecret(..)")
    }
}

impl ClusterSecret {
    /// Read the secret from `path`, or create that file with a random secret (mode 0600)
    /// if it does not exist. Surrounding whitespace is ignored. Refuses a file that others
    /// than its owner can read or write, or that holds no usable secret.
    pub fn load_or_create(path: &Path) -> io::Result<ClusterSecret> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::check_mode(path).and_then(|()| Self::parse(&text, path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Self::create(path),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("reading cluster secret {}: {e}", path.display()),
            )),
        }
    }

    /// Read the secret from an existing file (clients such as warrenctl: they never
    /// create one). The same checks as [`ClusterSecret::load_or_create`].
    pub fn load(path: &Path) -> io::Result<ClusterSecret> {
        let text = std::fs::read_to_string(path)?;
        Self::check_mode(path)?;
        Self::parse(&text, path)
    }

    /// A secret from text (configuration, tests). It must be printable ASCII, no spaces.
    pub fn new(text: &str) -> io::Result<ClusterSecret> {
        Self::parse(text, Path::new("<text>"))
    }

    /// A fresh random secret.
    pub fn generate() -> ClusterSecret {
        let bytes: [u8; GENERATED_BYTES] = rand::rng().random();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        ClusterSecret(hex.into())
    }

    /// The interceptor that clients use to attach the secret to every call.
    pub fn attach(&self) -> AttachSecret {
        let value: AsciiMetadataValue = self
            .0
            .parse()
            .expect("a parsed secret is valid metadata (printable ASCII)");
        AttachSecret(value)
    }

    /// The interceptor that servers use to refuse calls without the secret.
    pub fn check(&self) -> CheckSecret {
        CheckSecret(self.clone())
    }

    /// Compare in time independent of where the first difference is.
    fn matches(&self, presented: &[u8]) -> bool {
        let expected = self.0.as_bytes();
        let mut diff = expected.len() ^ presented.len();
        for (i, &b) in expected.iter().enumerate() {
            diff |= usize::from(b ^ presented.get(i).copied().unwrap_or(0));
        }
        diff == 0
    }

    fn parse(text: &str, path: &Path) -> io::Result<ClusterSecret> {
        let secret = text.trim();
        let usable = !secret.is_empty() && secret.bytes().all(|b| b.is_ascii_graphic());
        if !usable {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "cluster secret {}: must be non-empty printable ASCII without spaces",
                    path.display()
                ),
            ));
        }
        Ok(ClusterSecret(secret.into()))
    }

    fn check_mode(path: &Path) -> io::Result<()> {
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "cluster secret {} must be accessible by its owner only (mode {:o}; chmod 600)",
                    path.display(),
                    mode & 0o777
                ),
            ));
        }
        Ok(())
    }

    fn create(path: &Path) -> io::Result<ClusterSecret> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let secret = Self::generate();
        let created = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
        let mut file = match created {
            Ok(file) => file,
            // Another process created it first: use theirs.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Self::load_or_create(path)
            }
            Err(e) => return Err(e),
        };
        file.write_all(secret.0.as_bytes())?;
        file.sync_all()?;
        Ok(secret)
    }
}

/// Client interceptor: attaches the secret as metadata to every call.
#[derive(Clone)]
pub struct AttachSecret(AsciiMetadataValue);

impl Interceptor for AttachSecret {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert(SECRET_METADATA_KEY, self.0.clone());
        Ok(request)
    }
}

/// Server interceptor: refuses (`unauthenticated`) a call without the right secret, and
/// logs a warning naming the caller's address.
#[derive(Clone)]
pub struct CheckSecret(ClusterSecret);

impl Interceptor for CheckSecret {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let presented = request.metadata().get(SECRET_METADATA_KEY);
        if presented.is_some_and(|v| self.0.matches(v.as_bytes())) {
            return Ok(request);
        }
        let peer = request
            .remote_addr()
            .map_or_else(|| "unknown".to_string(), |a| a.to_string());
        let reason = if presented.is_some() {
            "wrong cluster secret"
        } else {
            "no cluster secret"
        };
        warn!(%peer, reason, "refused a cluster call");
        Err(Status::unauthenticated(reason))
    }
}

/// Metadata for a deliberately wrong secret (tests of the refusal).
#[cfg(test)]
pub(crate) fn metadata_value(text: &str) -> AsciiMetadataValue {
    tonic::metadata::MetadataValue::try_from(text).expect("ascii")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_created_owner_only_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/secret");
        let created = ClusterSecret::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(ClusterSecret::load_or_create(&path).unwrap(), created);
        assert_eq!(created.0.len(), GENERATED_BYTES * 2);
    }

    #[test]
    fn whitespace_is_ignored_and_bad_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        let write = |text: &str, mode: u32| {
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        write("  cookie\n", 0o600);
        assert_eq!(
            ClusterSecret::load_or_create(&path).unwrap(),
            ClusterSecret::new("cookie").unwrap()
        );
        write("cookie", 0o644);
        let err = ClusterSecret::load_or_create(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
        write("\n", 0o600);
        let err = ClusterSecret::load_or_create(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    }

    #[test]
    fn only_the_exact_secret_matches() {
        let secret = ClusterSecret::new("abc").unwrap();
        assert!(secret.matches(b"abc"));
        assert!(!secret.matches(b"abd"));
        assert!(!secret.matches(b"ab"));
        assert!(!secret.matches(b"abcd"));
        assert!(!secret.matches(b""));
    }

    #[test]
    fn the_check_refuses_missing_and_wrong_secrets() {
        let secret = ClusterSecret::new("abc").unwrap();
        let mut check = secret.check();
        let status = check.call(Request::new(())).unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        let mut wrong = Request::new(());
        wrong
            .metadata_mut()
            .insert(SECRET_METADATA_KEY, metadata_value("abd"));
        assert!(check.call(wrong).is_err());
        let attached = secret.attach().call(Request::new(())).unwrap();
        assert!(check.call(attached).is_ok());
    }
}
