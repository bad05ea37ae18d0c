//! One way to open a service's database, on SQLite or PostgreSQL, and to migrate it.
//!
//! - SQLite (the default, for a county on one machine): each service has its own file,
//!   `<data_dir>/<service>.db`, in WAL mode.
//! - PostgreSQL (for scale-out): one database, one schema per service, selected through
//!   `search_path` on every connection, so services never share a table.
//!
//! Queries use runtime `sqlx::query()` on the `Any` driver with `$1, $2` placeholders, which
//! both backends accept; dialect differences stay in each service's two migration folders.

use std::{borrow::Cow, path::Path, str::FromStr, time::Duration};

use sqlx::{
    Any, AnyPool, Executor,
    any::{AnyConnectOptions, AnyPoolOptions},
    migrate::{Migration, Migrator},
};

use crate::config::Config;

/// A transaction on a service's database.
pub type Tx = sqlx::Transaction<'static, Any>;
/// A connection, as stores and the audit and outbox helpers take it (`&mut *tx`).
pub type Conn = sqlx::AnyConnection;

static KIT_SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static KIT_POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

/// Migration versions below this belong to the kit (audit trail, outbox); a service's own
/// start here.
pub const FIRST_SERVICE_MIGRATION: i64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A service's migrations for both backends, embedded with `sqlx::migrate!`; versions start
/// at [`FIRST_SERVICE_MIGRATION`].
pub struct Migrations {
    pub sqlite: &'static Migrator,
    pub postgres: &'static Migrator,
}

impl Migrations {
    /// A service with no tables of its own yet (the kit's tables are always there).
    pub const NONE: Migrations = Migrations {
        sqlite: &Migrator::DEFAULT,
        postgres: &Migrator::DEFAULT,
    };
}

/// The user a `postgres://user[:password]@host/…` URL names, if it is a plain role name.
fn url_user(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let (auth, _) = rest.split_once('@')?;
    let user = auth.split(':').next()?;
    (!user.is_empty() && user.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then(|| user.to_string())
}

/// Why a database could not be opened or migrated; one line for the user.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A service's own start-up step failed: its configuration or its seed data.
    #[error("{0}")]
    Setup(String),
    #[error("bad database URL: {0}")]
    BadUrl(String),
    #[error("cannot connect to the {service} database: {source}")]
    Connect {
        service: String,
        source: sqlx::Error,
    },
    #[error("cannot migrate the {service} database: {message}")]
    Migrate { service: String, message: String },
    #[error("the database holds the {owner} service's data, not {service}'s")]
    WrongService { service: String, owner: String },
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
}

/// A service's database: a pool and the backend behind it.
#[derive(Debug, Clone)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
    /// The keys that seal what the database keeps of personal data in general form (the
    /// stored answers of the request log, R-54); none in tests that keep nothing personal.
    fields: Option<std::sync::Arc<crate::fields::FieldKeys>>,
    /// Wakes this database's audit sequencer after a commit (issue 22, item 4).
    sequencer: std::sync::Arc<crate::audit::Sequencer>,
}

impl Database {
    /// Opens and migrates the database of `service` as the configuration says.
    pub async fn open(
        config: &Config,
        service: &str,
        migrations: &Migrations,
    ) -> Result<Database, DbError> {
        let max = config.server.database_max_connections;
        let owner = config.database_owner_url.expose();
        // Issue 22, item 3: with an owner URL the service runs as a role that may only append
        // to its audit log; the owner migrates and grants.
        let separate = config.uses_postgres() && !owner.is_empty();
        if separate && config.server.migrate_on_start {
            Database::migrate_as_owner(owner, config.database_url.expose(), service, migrations)
                .await?;
        }
        let db = if separate {
            Database::connect_postgres_schema(config.database_url.expose(), service, max, false)
                .await?
        } else if config.uses_postgres() {
            Database::connect_postgres(config.database_url.expose(), service, max).await?
        } else {
            Database::connect_sqlite(&config.data_dir.join(format!("{service}.db")), service, max)
                .await?
        };
        db.observe_pool(service);
        if config.server.migrate_on_start {
            if !separate {
                db.migrate(service, migrations).await?;
            }
            crate::identities::qualify_stored(&db, service, &config.auth.issuer)
                .await
                .map_err(|e| DbError::Migrate {
                    service: service.to_string(),
                    message: format!("qualifying stored identities: {}", e.message),
                })?;
        } else {
            db.check_migrated(service, migrations).await?;
        }
        Ok(db)
    }

    /// `db.pool.connections` (by service and state: in_use, idle) and `db.pool.max`, read when
    /// the metrics are collected.
    fn observe_pool(&self, service: &str) {
        let meter = opentelemetry::global::meter("qaward");
        let (pool, name) = (self.pool.clone(), service.to_string());
        meter
            .i64_observable_gauge("db.pool.connections")
            .with_description("Database connections of the service's pool, in use and idle")
            .with_callback(move |o| {
                let (size, idle) = (i64::from(pool.size()), pool.num_idle() as i64);
                let service = opentelemetry::KeyValue::new("service", name.clone());
                o.observe(
                    size - idle,
                    &[
                        service.clone(),
                        opentelemetry::KeyValue::new("state", "in_use"),
                    ],
                );
                o.observe(
                    idle,
                    &[service, opentelemetry::KeyValue::new("state", "idle")],
                );
            })
            .build();
        let (pool, name) = (self.pool.clone(), service.to_string());
        meter
            .i64_observable_gauge("db.pool.max")
            .with_description("The most connections the service's pool opens")
            .with_callback(move |o| {
                o.observe(
                    i64::from(pool.options().get_max_connections()),
                    &[opentelemetry::KeyValue::new("service", name.clone())],
                );
            })
            .build();
    }

    /// Refuses a database that is not migrated to this release (or is another service's):
    /// with `server.migrate_on_start = false` the migrations run once, by `qaward migrate`,
    /// and a replica started before that must not serve an old schema.
    pub async fn check_migrated(
        &self,
        service: &str,
        migrations: &Migrations,
    ) -> Result<(), DbError> {
        use sqlx::Row;
        self.check_owner(service).await?;
        let (kit, own) = match self.backend {
            Backend::Sqlite => (&KIT_SQLITE, migrations.sqlite),
            Backend::Postgres => (&KIT_POSTGRES, migrations.postgres),
        };
        let applied: Vec<i64> =
            sqlx::query("SELECT version FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_all(&self.pool)
                .await
                .map(|rows| {
                    rows.iter()
                        .filter_map(|r| r.try_get("version").ok())
                        .collect()
                })
                .unwrap_or_default();
        let missing: Vec<String> = kit
            .migrations
            .iter()
            .chain(own.migrations.iter())
            .filter(|m| !applied.contains(&m.version))
            .map(|m| m.version.to_string())
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(DbError::Migrate {
                service: service.to_string(),
                message: format!(
                    "it is not migrated to this release (missing {}); run `qaward migrate` first, or set server.migrate_on_start",
                    missing.join(", ")
                ),
            })
        }
    }

    /// Opens (creating if needed) a SQLite file.
    pub async fn connect_sqlite(
        path: &Path,
        service: &str,
        max_connections: u32,
    ) -> Result<Database, DbError> {
        sqlx::any::install_default_drivers();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| DbError::DataDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let options =
            AnyConnectOptions::from_str(&url).map_err(|e| DbError::BadUrl(e.to_string()))?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // WAL lets readers run beside the one writer; a writer waits for the lock
                    // instead of failing at once. FULL syncs the log at every commit: an
                    // answered call (an accepted notification, a sealed sheet, an audit row)
                    // survives a power cut, not only a crash of the process.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = FULL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|source| DbError::Connect {
                service: service.to_string(),
                source,
            })?;
        Ok(Database {
            pool,
            backend: Backend::Sqlite,
            fields: None,
            sequencer: Default::default(),
        })
    }

    /// Runs `service`'s migrations as the schema's owner (`owner_url`) and grants the role of
    /// `service_url` what the service needs: reading and writing its tables, but on the audit
    /// log only appending (issue 22, item 3). Not being the owner, that role can neither drop
    /// the log's triggers nor alter, empty or truncate its tables.
    pub async fn migrate_as_owner(
        owner_url: &str,
        service_url: &str,
        service: &str,
        migrations: &Migrations,
    ) -> Result<(), DbError> {
        let role = url_user(service_url).ok_or_else(|| {
            DbError::BadUrl("database_url names no user (postgres://user@host/db)".to_string())
        })?;
        let owner = Database::connect_postgres(owner_url, service, 1).await?;
        owner.migrate(service, migrations).await?;
        let grants = [
            format!("GRANT USAGE ON SCHEMA \"{service}\" TO \"{role}\""),
            format!(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA \"{service}\" TO \"{role}\""
            ),
            format!(
                "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA \"{service}\" TO \"{role}\""
            ),
            // What migrations alone change.
            format!("REVOKE INSERT, UPDATE, DELETE ON _sqlx_migrations FROM \"{role}\""),
            // The log: appended to, never changed. The head only moves (its trigger says
            // forward); a pending record leaves only into the trail (its trigger checks).
            format!(
                "REVOKE UPDATE, DELETE ON audit_log, audit_tree, audit_checkpoints FROM \"{role}\""
            ),
            format!("REVOKE INSERT, DELETE ON audit_head FROM \"{role}\""),
            format!("REVOKE UPDATE ON audit_pending FROM \"{role}\""),
        ];
        let migrate_err = |e: sqlx::Error| DbError::Migrate {
            service: service.to_string(),
            message: format!("granting the service's role {role}: {e}"),
        };
        for g in grants {
            owner
                .pool
                .execute(sqlx::AssertSqlSafe(g))
                .await
                .map_err(migrate_err)?;
        }
        owner.pool.close().await;
        Ok(())
    }

    /// Connects to PostgreSQL, creating the service's schema if needed and selecting it on
    /// every connection.
    pub async fn connect_postgres(
        url: &str,
        schema: &str,
        max_connections: u32,
    ) -> Result<Database, DbError> {
        Database::connect_postgres_schema(url, schema, max_connections, true).await
    }

    /// As [`Database::connect_postgres`]; a role that is not the owner (`create: false`) needs
    /// the schema to exist already.
    async fn connect_postgres_schema(
        url: &str,
        schema: &str,
        max_connections: u32,
        create: bool,
    ) -> Result<Database, DbError> {
        sqlx::any::install_default_drivers();
        if !schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            || schema.is_empty()
        {
            return Err(DbError::BadUrl(format!("invalid schema name {schema:?}")));
        }
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(DbError::BadUrl("expected a postgres:// URL".to_string()));
        }
        let connect_err = |source| DbError::Connect {
            service: schema.to_string(),
            source,
        };
        let base = AnyConnectOptions::from_str(url).map_err(|e| DbError::BadUrl(e.to_string()))?;
        if create {
            let setup = AnyPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(base)
                .await
                .map_err(connect_err)?;
            setup
                .execute(sqlx::AssertSqlSafe(format!(
                    "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
                )))
                .await
                .map_err(connect_err)?;
            setup.close().await;
        }
        let sep = if url.contains('?') { '&' } else { '?' };
        let with_path = format!("{url}{sep}options=-c%20search_path%3D{schema}");
        let options =
            AnyConnectOptions::from_str(&with_path).map_err(|e| DbError::BadUrl(e.to_string()))?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(connect_err)?;
        Ok(Database {
            pool,
            backend: Backend::Postgres,
            fields: None,
            sequencer: Default::default(),
        })
    }

    /// Applies the kit's migrations and then the service's, in version order, after checking
    /// that the database is not another service's; then records the owner.
    pub async fn migrate(&self, service: &str, migrations: &Migrations) -> Result<(), DbError> {
        self.check_owner(service).await?;
        let (kit, own) = match self.backend {
            Backend::Sqlite => (&KIT_SQLITE, migrations.sqlite),
            Backend::Postgres => (&KIT_POSTGRES, migrations.postgres),
        };
        let migrate_err = |message: String| DbError::Migrate {
            service: service.to_string(),
            message,
        };
        if let Some(m) = own
            .migrations
            .iter()
            .find(|m| m.version < FIRST_SERVICE_MIGRATION)
        {
            return Err(migrate_err(format!(
                "migration {} is numbered below {FIRST_SERVICE_MIGRATION}, which the kit reserves",
                m.version
            )));
        }
        let all: Vec<Migration> = kit
            .migrations
            .iter()
            .chain(own.migrations.iter())
            .cloned()
            .collect();
        let migrator = Migrator {
            migrations: Cow::Owned(all),
            ..Migrator::DEFAULT
        };
        migrator
            .run(&self.pool)
            .await
            .map_err(|e| migrate_err(e.to_string()))?;
        sqlx::query(
            "INSERT INTO service_meta (key, value) VALUES ('service', $1) ON CONFLICT (key) DO NOTHING",
        )
        .bind(service)
        .execute(&self.pool)
        .await
        .map_err(|e| migrate_err(e.to_string()))?;
        self.check_owner(service).await
    }

    /// Refuses a database that another service owns.
    async fn check_owner(&self, service: &str) -> Result<(), DbError> {
        use sqlx::Row;
        // Before the first migration there is no service_meta table: nothing to check.
        let owner = match sqlx::query("SELECT value FROM service_meta WHERE key = 'service'")
            .fetch_optional(&self.pool)
            .await
        {
            Ok(row) => row.and_then(|r| r.try_get::<String, _>("value").ok()),
            Err(_) => None,
        };
        match owner {
            Some(owner) if owner != service => Err(DbError::WrongService {
                service: service.to_string(),
                owner,
            }),
            _ => Ok(()),
        }
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The database sealing its stored answers with `keys`.
    pub fn with_fields(mut self, keys: std::sync::Arc<crate::fields::FieldKeys>) -> Database {
        self.fields = Some(keys);
        self
    }

    /// The keys its stored answers are sealed with, if any.
    pub fn fields(&self) -> Option<&crate::fields::FieldKeys> {
        self.fields.as_deref()
    }

    /// Says a change with an audit record committed: the sequencer (started on first use)
    /// brings it into the trail.
    pub fn audit_committed(&self) {
        self.sequencer.wake(self);
    }

    /// How many handles share this database's sequencer (the sequencer's own included).
    pub(crate) fn sequencer_handles(&self) -> usize {
        std::sync::Arc::strong_count(&self.sequencer)
    }

    /// Resolves when a commit wakes the sequencer.
    pub(crate) async fn sequencer_woken(&self) {
        self.sequencer.wait().await
    }

    /// For the benchmark of the write path only: commits write no audit record, the baseline
    /// the audit append is measured against (issue 22, item 4). Never in a service.
    pub fn without_audit_for_benchmark(mut self) -> Database {
        self.sequencer = std::sync::Arc::new(crate::audit::Sequencer::off());
        self
    }

    /// Whether commits write their audit record (false only in the benchmark's baseline).
    pub fn audits(&self) -> bool {
        self.sequencer.on()
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a transaction: every mutation, its audit record and its outbox event go in one.
    /// On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`): a deferred transaction
    /// that reads and then writes can deadlock with another and fail with "database is
    /// locked" instead of waiting its turn.
    pub async fn begin(&self) -> crate::Result<Tx> {
        // Whatever this transaction records for the trail is sequenced after it commits.
        self.sequencer.start(self);
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
