//! The one error type of ikl-core, grouped by domain (candle `error.rs` style).
//!
//! Every fallible path that touches data from files or users returns `Result<T>`; nothing in the core
//! panics on bad input. The N-API layer maps each variant to a JS error `code` (see `Error::code`).

use std::fmt;

#[derive(Debug)]
pub enum Error {
    /// Malformed or inconsistent GGUF data.
    Gguf { path: String, offset: u64, what: String },
    /// A feature, type or architecture the engine does not support.
    Unsupported { what: String },
    /// A tensor shape that does not fit an operation or a model definition.
    Shape { op: String, expected: String, got: String },
    /// A CUDA driver or kernel failure.
    Cuda { call: String, code: i32, msg: String },
    /// An I/O error with the path it concerns.
    Io { path: String, err: std::io::Error },
    /// An invalid argument or option value.
    Invalid { what: String },
    /// An allocation the machine cannot satisfy.
    OutOfMemory { what: String },
    /// The operation was cancelled by the caller.
    Cancelled,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Stable code exposed to JavaScript as `err.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Gguf { .. } => "IKL_E_GGUF",
            Error::Unsupported { .. } => "IKL_E_UNSUPPORTED",
            Error::Shape { .. } => "IKL_E_SHAPE",
            Error::Cuda { .. } => "IKL_E_CUDA",
            Error::Io { .. } => "IKL_E_IO",
            Error::Invalid { .. } => "IKL_E_INVALID",
            Error::OutOfMemory { .. } => "IKL_E_OOM",
            Error::Cancelled => "IKL_E_CANCELLED",
        }
    }

    /// A GGUF error. `what` may quote names and keys taken from the file: control characters are escaped
    /// so a message always stays on one line.
    pub fn gguf(path: &str, offset: u64, what: impl Into<String>) -> Self {
        Error::Gguf { path: path.to_string(), offset, what: one_line(&what.into()) }
    }

    pub fn io(path: &str, err: std::io::Error) -> Self {
        Error::Io { path: path.to_string(), err }
    }
}

/// Escape control characters (newlines, escapes, NULs) so text from files cannot break a one-line message.
pub fn one_line(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Gguf { path, offset, what } => write!(f, "{path}: invalid GGUF at byte {offset}: {what}"),
            Error::Unsupported { what } => write!(f, "unsupported: {what}"),
            Error::Shape { op, expected, got } => write!(f, "{op}: expected shape {expected}, got {got}"),
            Error::Cuda { call, code, msg } => write!(f, "CUDA error in {call}: {msg} (code {code})"),
            Error::Io { path, err } => match err.kind() {
                std::io::ErrorKind::NotFound => write!(f, "{path}: no such file"),
                std::io::ErrorKind::PermissionDenied => write!(f, "{path}: permission denied"),
                _ => write!(f, "{path}: {err}"),
            },
            Error::Invalid { what } => write!(f, "{what}"),
            Error::OutOfMemory { what } => write!(f, "out of memory: {what}"),
            Error::Cancelled => write!(f, "cancelled"),
        }
    }
}

impl std::error::Error for Error {}

/// Return early with an `Error::Invalid`-style error built by the given expression.
#[macro_export]
macro_rules! bail {
    ($err:expr) => {
        return Err($err)
    };
}

/// `ensure!(cond, err)`: return `Err(err)` when `cond` is false.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $err:expr) => {
        if !($cond) {
            return Err($err);
        }
    };
}
