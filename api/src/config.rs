//! Configuration: command-line flags, each with an environment variable.

use clap::{Parser, Subcommand, ValueEnum};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for log shippers).
    Json,
}

/// The HEP FHIR server.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "hep-server",
    version,
    about = "FHIR R4 server for home exercise programs"
)]
pub struct Config {
    /// Address and port to listen on.
    #[arg(long, env = "HEP_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,

    /// Database: a PostgreSQL URL (`postgres://user:pass@host/db`) or an SQLite file path.
    #[arg(
        long,
        env = "HEP_DATABASE_URL",
        default_value = "hep.db",
        global = true
    )]
    pub database_url: String,

    /// Public base URL of the FHIR endpoint (e.g. `https://hep.example.org/fhir`), used in
    /// `Location` headers and Bundle links. Default: derived from each request's Host.
    #[arg(long, env = "HEP_BASE_URL")]
    pub base_url: Option<String>,

    /// Log format.
    #[arg(long, env = "HEP_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Largest request body accepted, in bytes (larger: 413).
    #[arg(long, env = "HEP_MAX_BODY_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Largest exercise picture or video accepted as a `Binary`, in bytes (before
    /// base64). A JSON or XML `Binary` body may be up to a third larger than this.
    #[arg(long, env = "HEP_MAX_BINARY_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub max_binary_bytes: usize,

    /// Largest transaction, batch or message Bundle accepted, in bytes (larger: 413).
    #[arg(long, env = "HEP_MAX_BUNDLE_BYTES", default_value_t = 32 * 1024 * 1024)]
    pub max_bundle_bytes: usize,

    /// Most entries in a transaction, batch or message Bundle (more: 413).
    #[arg(long, env = "HEP_MAX_BUNDLE_ENTRIES", default_value_t = 5000)]
    pub max_bundle_entries: usize,

    /// Most operations in one JSON Patch document (more: 422). The patched resource is
    /// held to the body limit at every operation (larger: 413).
    #[arg(long, env = "HEP_MAX_PATCH_OPERATIONS", default_value_t = 1000)]
    pub max_patch_operations: usize,

    /// Most entries of one transaction or batch Bundle that search (`GET [type]?...`);
    /// in a batch the entries past it answer 413, a transaction fails with 413.
    /// Batches run in the write transaction (on SQLite, on the one writer thread), so
    /// their searches hold up every write while they run.
    #[arg(long, env = "HEP_MAX_BUNDLE_SEARCHES", default_value_t = 50)]
    pub max_bundle_searches: usize,

    /// Most resources the entries of one transaction or batch Bundle read or return
    /// (search matches and includes, reads, representations).
    #[arg(
        long,
        env = "HEP_MAX_BUNDLE_RESPONSE_RESOURCES",
        default_value_t = 10_000
    )]
    pub max_bundle_response_resources: usize,

    /// Most bytes of resources in the answer to one transaction or batch Bundle.
    #[arg(long, env = "HEP_MAX_BUNDLE_RESPONSE_BYTES", default_value_t = 32 * 1024 * 1024)]
    pub max_bundle_response_bytes: usize,

    /// Seconds a client has to send a request body, from the end of its headers (later:
    /// 408). The headers themselves must arrive within 5 seconds.
    #[arg(long, env = "HEP_BODY_TIMEOUT_SECS", default_value_t = 30)]
    pub body_timeout_secs: u64,

    /// Deepest nesting of JSON objects/arrays or XML elements accepted.
    #[arg(long, env = "HEP_MAX_DEPTH", default_value_t = 64)]
    pub max_depth: usize,

    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "HEP_WORKERS")]
    pub workers: Option<usize>,

    /// Database connections for reads (one thread each), and for writes on PostgreSQL.
    /// One client (clinic and client id) holds at most `--db-reads-per-client` of the
    /// readers at once; its further reads wait their turn.
    #[arg(long, env = "HEP_DB_POOL_SIZE", default_value_t = 4)]
    pub db_pool_size: u32,

    /// Readers one client may hold at once (0: all but one, at least one). Raise it to
    /// the pool size when a single client is the only one.
    #[arg(long, env = "HEP_DB_READS_PER_CLIENT", default_value_t = 0)]
    pub db_reads_per_client: u32,

    /// Milliseconds a database statement may run before it is stopped (0: no limit).
    /// PostgreSQL: `statement_timeout` of the readers' and writers' connections. SQLite:
    /// the search SQL of one read or write job, checked row by row. A request stopped
    /// by it answers 503 with `Retry-After`.
    #[arg(long, env = "HEP_STATEMENT_TIMEOUT_MS", default_value_t = 10_000)]
    pub statement_timeout_ms: u64,

    /// Milliseconds one statement of a bulk export (a page of 1,000 resources) may run
    /// (0: no limit). An export reads in one long transaction on a connection of its
    /// own; a page stopped by it fails the export.
    #[arg(
        long,
        env = "HEP_EXPORT_STATEMENT_TIMEOUT_MS",
        default_value_t = 300_000
    )]
    pub export_statement_timeout_ms: u64,

    /// Free disk space, in MiB, that an SQLite database's file system must keep for
    /// `GET /health/ready` to pass (below it the server answers not ready, before writes
    /// start failing with a full disk).
    #[arg(long, env = "HEP_HEALTH_MIN_FREE_DISK_MB", default_value_t = 256)]
    pub health_min_free_disk_mb: u64,

    /// SQLite only: the largest the database file may grow, in MiB (0: no limit). Past
    /// it, writes answer 503 `disk full` (nothing half-written) and reads go on, as
    /// when the disk itself is full.
    #[arg(long, env = "HEP_SQLITE_MAX_SIZE_MB", default_value_t = 0)]
    pub sqlite_max_size_mb: u64,

    /// Load the starter exercise library and protocol templates into a new database
    /// (`--starter-library false` to start empty). Loaded once: later changes by the
    /// clinic are kept.
    #[arg(long, env = "HEP_STARTER_LIBRARY", default_value_t = true, action = clap::ArgAction::Set)]
    pub starter_library: bool,

    /// Serve the patient app at `/app/` and register it in every clinic as the public
    /// client `hep-app.<clinic>` (`--patient-app false`: neither; a registration made
    /// earlier is kept until `client remove`).
    #[arg(long, env = "HEP_PATIENT_APP", default_value_t = true, action = clap::ArgAction::Set)]
    pub patient_app: bool,

    /// Time zone of patients whose record states none (an IANA name such as
    /// `Europe/Paris`; a Patient states its own with the `tz-code` extension).
    #[arg(long, env = "HEP_TIME_ZONE", default_value = "UTC")]
    pub time_zone: String,

    /// Days ahead that exercise sessions (Tasks) of open-ended programs are made.
    #[arg(long, env = "HEP_SESSION_HORIZON_DAYS", default_value_t = 14)]
    pub session_horizon_days: u32,

    /// Milliseconds between two runs of the background jobs (missed sessions, session
    /// horizon).
    #[arg(long, env = "HEP_JOB_INTERVAL_MS", default_value_t = 30_000)]
    pub job_interval_ms: u64,

    /// Seconds to finish in-flight requests after SIGTERM/SIGINT.
    #[arg(long, env = "HEP_SHUTDOWN_TIMEOUT", default_value_t = 30)]
    pub shutdown_timeout: u64,

    /// Origins of browser apps allowed to call the API (CORS), comma separated, such as
    /// `https://app.example.org`. None by default: browsers then refuse cross-origin calls.
    #[arg(long, env = "HEP_CORS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub cors_allowed_origins: Vec<String>,

    /// Requests per second each client (token subject) may make, on average; 0 for no
    /// limit. Over it: 429 with `Retry-After`.
    #[arg(long, env = "HEP_RATE_LIMIT_PER_SECOND", default_value_t = 500)]
    pub rate_limit_per_second: u32,

    /// Requests a client may make at once above the average rate.
    #[arg(long, env = "HEP_RATE_LIMIT_BURST", default_value_t = 1000)]
    pub rate_limit_burst: u32,

    /// Accept the access tokens of this OpenID Connect provider (its `iss`), besides the
    /// server's own.
    #[arg(long, env = "HEP_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,

    /// The provider's JWKS URL (https).
    #[arg(long, env = "HEP_OIDC_JWKS_URL")]
    pub oidc_jwks_url: Option<String>,

    /// The `aud` the provider's tokens must name (usually this server's FHIR base URL).
    #[arg(long, env = "HEP_OIDC_AUDIENCE")]
    pub oidc_audience: Option<String>,

    /// The claim of the provider's tokens that names the clinic.
    #[arg(long, env = "HEP_OIDC_TENANT_CLAIM", default_value = "tenant")]
    pub oidc_tenant_claim: String,

    /// Directory of bulk export files (one directory per export). With several server
    /// processes, every process must see the same directory (a shared volume).
    #[arg(long, env = "HEP_EXPORT_DIR", default_value = "exports")]
    pub export_dir: String,

    /// Minutes the files of a finished export are kept before they are removed.
    #[arg(long, env = "HEP_EXPORT_EXPIRY_MINUTES", default_value_t = 24 * 60)]
    pub export_expiry_minutes: u64,

    /// Resources per export file; a type with more is split into several files.
    #[arg(long, env = "HEP_EXPORT_FILE_MAX_RESOURCES", default_value_t = 250_000)]
    pub export_file_max_resources: u64,

    /// Threads of this process that run exports (0: this process accepts kick-offs and
    /// serves files, and other processes on the same database run the exports).
    #[arg(long, env = "HEP_EXPORT_WORKERS", default_value_t = 1)]
    pub export_workers: usize,

    /// Milliseconds an export pauses after each 1,000 resources, leaving room for
    /// interactive requests on a busy machine (0: no pause).
    #[arg(long, env = "HEP_EXPORT_PAUSE_MS", default_value_t = 0)]
    pub export_pause_ms: u64,

    /// Threads of this process that deliver subscription notifications (0: none; other
    /// processes on the same database deliver them).
    #[arg(long, env = "HEP_SUBSCRIPTION_WORKERS", default_value_t = 1)]
    pub subscription_workers: usize,

    /// Failed deliveries in a row after which a subscription is `error` (it is still
    /// retried, at the longest backoff, and resumes with the events it missed).
    #[arg(long, env = "HEP_SUBSCRIPTION_MAX_FAILURES", default_value_t = 5)]
    pub subscription_max_failures: u32,

    /// The longest wait, in seconds, between two delivery attempts.
    #[arg(long, env = "HEP_SUBSCRIPTION_MAX_BACKOFF_SECS", default_value_t = 300)]
    pub subscription_max_backoff_secs: u64,

    /// Allow subscription endpoints on this machine (`http://` too): for local
    /// development and tests only.
    #[arg(long, env = "HEP_SUBSCRIPTION_ALLOW_LOOPBACK", default_value_t = false, action = clap::ArgAction::Set)]
    pub subscription_allow_loopback: bool,

    /// Allow subscription endpoints on private, link-local and reserved addresses
    /// (an EHR inside the clinic's network).
    #[arg(long, env = "HEP_SUBSCRIPTION_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub subscription_allow_private: bool,

    /// Key of the HMAC-SHA256 signature sent with each notification
    /// (`X-Hep-Signature`); none by default.
    #[arg(long, env = "HEP_SUBSCRIPTION_SIGNING_KEY", hide_env_values = true)]
    pub subscription_signing_key: Option<String>,

    /// A command instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Commands besides serving.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Prints an access token for local use, signed with the database's token key.
    DevToken {
        /// SMART scopes, space separated (`system/*.cruds`, `patient/*.rs`, ...).
        #[arg(long, default_value = "system/*.cruds")]
        scope: String,
        /// The patient in context (for patient scopes).
        #[arg(long)]
        patient: Option<String>,
        /// The clinic whose data the token opens.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Minutes the token lasts.
        #[arg(long, default_value_t = 480)]
        minutes: i64,
        /// Sign a token for a PostgreSQL server that is not on this machine.
        #[arg(long)]
        force: bool,
    },
    /// Copies the SQLite database, while the server runs, into a new file (a consistent
    /// copy: every write committed before the copy began; README, Backups).
    Backup {
        /// The new file to write.
        #[arg(long)]
        to: std::path::PathBuf,
    },
    /// Registered clients (SMART Backend Services).
    Client {
        #[command(subcommand)]
        command: ClientCommand,
    },
    /// Accounts of the clinic's staff.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

/// What `hep-server user` does.
#[derive(Debug, Clone, Subcommand)]
pub enum UserCommand {
    /// Adds a staff account and prints its one-time set-up code (the last word), with
    /// which the person chooses a password within 7 days.
    Add {
        #[arg(long, default_value = "default")]
        tenant: String,
        /// The person's Practitioner in the clinic (`Practitioner/<id>`).
        #[arg(long)]
        practitioner: String,
        #[arg(long)]
        username: String,
        /// `therapist` or `admin`.
        #[arg(long, value_parser = ["therapist", "admin"])]
        role: String,
    },
    /// Lists the clinic's accounts (one JSON object a line; no secrets).
    List {
        #[arg(long, default_value = "default")]
        tenant: String,
    },
}

/// What `hep-server client` does.
#[derive(Debug, Clone, Subcommand)]
pub enum ClientCommand {
    /// Registers a client and prints its id.
    Add {
        /// The clinic it acts for.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// A name for people (the EHR, the tool).
        #[arg(long)]
        name: String,
        /// The scopes it may be granted, space separated (such as `system/*.rs`).
        #[arg(long)]
        scope: String,
        /// A file holding its public keys as a JWKS document.
        #[arg(long, conflicts_with = "jwks_url")]
        jwks_file: Option<std::path::PathBuf>,
        /// The https URL of its JWKS document.
        #[arg(long)]
        jwks_url: Option<String>,
        /// An app people sign in to, without a secret (a browser or phone app: PKCE).
        #[arg(long, conflicts_with_all = ["jwks_file", "jwks_url", "confidential"])]
        public: bool,
        /// An app people sign in to, with a secret (a server-side app): the secret is
        /// printed once.
        #[arg(long, conflicts_with_all = ["jwks_file", "jwks_url"])]
        confidential: bool,
        /// A redirect URI of the app (https, or http on the loopback address with any
        /// port); repeat for several.
        #[arg(long = "redirect-uri")]
        redirect_uri: Vec<String>,
    },
    /// Lists the clinic's clients (one JSON object a line).
    List {
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// Gives a client new public keys (assertions signed with the old ones are refused).
    Keys {
        #[arg(long, default_value = "default")]
        tenant: String,
        /// The client's id.
        #[arg(long)]
        client_id: String,
        /// A file holding its public keys as a JWKS document.
        #[arg(long, conflicts_with = "jwks_url")]
        jwks_file: Option<std::path::PathBuf>,
        /// The https URL of its JWKS document.
        #[arg(long)]
        jwks_url: Option<String>,
    },
    /// Removes a client: it gets no more tokens.
    Remove {
        #[arg(long, default_value = "default")]
        tenant: String,
        /// The client's id.
        #[arg(long)]
        client_id: String,
    },
}

impl Config {
    /// The time limits of database statements.
    pub fn statement_limits(&self) -> crate::db::StatementLimits {
        let ms = |v: u64| (v > 0).then(|| std::time::Duration::from_millis(v));
        crate::db::StatementLimits {
            statement: ms(self.statement_timeout_ms),
            export: ms(self.export_statement_timeout_ms),
        }
    }

    /// A configuration with every default, for the given database (tests, tools).
    pub fn for_database(database_url: &str) -> Config {
        let mut c = Config::parse_from(["hep-server"]);
        c.database_url = database_url.to_string();
        c
    }
}
