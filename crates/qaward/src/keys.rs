//! `qaward keys …`: the deployment's key pairs (`init`) and the field keys that seal personal
//! data: `rotate` adds a key, `activate` makes a staged one current, `status` says how
//! many values of each service are not yet under the current key.

use qaward_kit::{
    auth::LocalKey,
    config::{Config, ServiceKind},
    db::Database,
    fields::{self, FieldKeys},
    reseal::{self, SealedColumn},
};

/// `qaward keys init DIR`: the people's and the services' key pairs and the field keys, laid
/// out as in a data directory (`DIR/keys/…`), so `qaward token --data-dir DIR` signs with the
/// people's key.
pub fn init(dir: &std::path::Path) -> Result<(), String> {
    let people = LocalKey::load_or_create(dir).map_err(|e| e.to_string())?;
    let services = LocalKey::load_or_create_service(dir).map_err(|e| e.to_string())?;
    for (what, key, file, jwks) in [
        (
            "people",
            &people,
            LocalKey::SIGNING_KEY_FILE,
            LocalKey::JWKS_FILE,
        ),
        (
            "services",
            &services,
            LocalKey::SERVICE_KEY_FILE,
            LocalKey::SERVICE_JWKS_FILE,
        ),
    ] {
        println!(
            "{what}: key {} in {} (public: {})",
            key.kid(),
            dir.join(file).display(),
            dir.join(jwks).display()
        );
    }
    // the field keys that seal personal data, to mount in every process of the services
    // (`QAWARD_PRIVACY__KEY_FILE`): a restarted container must open what its predecessor sealed.
    let fields = qaward_kit::config::Privacy::default().key_file_in(dir);
    FieldKeys::load_or_create(&fields, qaward_kit::fields::Algorithm::Sm4Gcm)?;
    println!("personal data: field keys in {}", fields.display());
    // Issue 22, item 3: the key that signs every service's audit checkpoints, one per
    // deployment, outside the database.
    let audit = qaward_kit::config::AuditLog::default().key_file_in(dir);
    let key = qaward_kit::audit::AuditKey::load_or_create(&audit).map_err(|e| e.to_string())?;
    println!(
        "audit checkpoints: key {} in {} (public: {})",
        key.public().id(),
        audit.display(),
        qaward_kit::audit::checkpoint::public_path(&audit).display()
    );
    Ok(())
}

fn key_file(config: &Config) -> std::path::PathBuf {
    config.privacy.key_file_in(&config.data_dir)
}

/// `qaward keys rotate [--stage]`: a new field key in the key file, current at once unless
/// staged. The services take it at their next start and re-seal in the background.
pub fn rotate(config: &Config, stage: bool) -> Result<(), String> {
    let path = key_file(config);
    if !path.exists() {
        return Err(format!(
            "no field key file at {} (privacy.key_file); `qaward keys init` or a first start makes one",
            path.display()
        ));
    }
    let id = fields::add_key(&path, !stage)?;
    if stage {
        println!(
            "field key {id} added to {} (staged: values are still sealed with the current key).\n\
             Restart every process with this file, then run `qaward keys activate {id}` and restart them again.",
            path.display()
        );
    } else {
        println!(
            "field key {id} added to {} and made current.\n\
             Restart the services: each re-seals its personal data under {id} in the background, \
             resumably (`qaward keys status` shows what is left). Keep the older keys until it shows none.",
            path.display()
        );
    }
    Ok(())
}

/// `qaward keys activate ID`: the staged key `id` seals new values from the next start.
pub fn activate(config: &Config, id: &str) -> Result<(), String> {
    let path = key_file(config);
    fields::activate_key(&path, id)?;
    println!(
        "field key {id} is current in {}; restart the services to re-seal under it.",
        path.display()
    );
    Ok(())
}

fn sealed_columns(kind: ServiceKind) -> &'static [SealedColumn] {
    match kind {
        ServiceKind::Applications => qaward_applications::SEALED,
        ServiceKind::Reviewers => qaward_reviewers::store::SEALED,
        ServiceKind::Scoring => qaward_scoring::SEALED,
        ServiceKind::Notifications => qaward_notifications::store::SEALED,
        ServiceKind::Gateway => &[],
    }
}

/// `qaward keys status`: per service and column, how many values are not yet sealed under the
/// current key; an error (exit 1) while any are left.
pub async fn status(config: Config, targets: Vec<ServiceKind>) -> Result<(), String> {
    let keys = FieldKeys::load_or_create(&key_file(&config), config.privacy.algorithm)?;
    let targets = if targets.is_empty() {
        ServiceKind::ALL.to_vec()
    } else {
        targets
    };
    let mut left = 0;
    for kind in targets {
        let Some(migrations) = crate::serve::migrations_of(kind) else {
            continue;
        };
        let db = Database::open(&config, kind.as_str(), migrations)
            .await
            .map_err(|e| e.to_string())?;
        for (column, n) in reseal::pending(&db, &keys, sealed_columns(kind))
            .await
            .map_err(|e| e.to_string())?
        {
            println!(
                "{}: {column}: {n} not under {}",
                kind.as_str(),
                keys.current_key_id()
            );
            left += n;
        }
        db.close().await;
    }
    if left > 0 {
        return Err(format!(
            "{left} values are not yet under the current key {}; keep the older keys",
            keys.current_key_id()
        ));
    }
    println!(
        "every sealed value is under the current key {}",
        keys.current_key_id()
    );
    Ok(())
}
