//! a key rotation takes effect by re-sealing every sealed column under the current key,
//! and plaintext an earlier version kept migrates in place; resumable, on the record.

use qaward_kit::{
    fields::{self, Algorithm, FieldKeys},
    reseal::{self, Form, REQUEST_LOG, Resealed, SealedColumn},
    testing,
};
use sqlx::Row;

const PEOPLE: SealedColumn = SealedColumn {
    table: "people",
    key: &["id"],
    column: "mobile",
    form: Form::Text,
};

async fn texts(db: &qaward_kit::db::Database) -> Vec<String> {
    sqlx::query("SELECT mobile FROM people ORDER BY id")
        .fetch_all(db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get(0).unwrap())
        .collect()
}

#[tokio::test]
async fn r54_after_a_rotation_every_value_reads_and_none_stays_under_the_old_key() {
    for db in testing::backends("reseal", &testing::no_migrations()).await {
        let label = db.label;
        let db = db.db;
        sqlx::query("CREATE TABLE people (id TEXT PRIMARY KEY, mobile TEXT NOT NULL)")
            .execute(db.pool())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fields.json");
        let k1 = FieldKeys::load_or_create(&path, Algorithm::Sm4Gcm).unwrap();
        // Five people: three sealed under k1, one an older version kept in clear, one empty.
        let plain = [
            "13800000001",
            "13800000002",
            "13800000003",
            "13800000004",
            "",
        ];
        for (i, m) in plain.iter().enumerate() {
            let stored = if i < 3 { k1.seal(m) } else { m.to_string() };
            sqlx::query("INSERT INTO people (id, mobile) VALUES ($1, $2)")
                .bind(format!("p{i}"))
                .bind(stored)
                .execute(db.pool())
                .await
                .unwrap();
        }
        // Two stored answers under k1, one in clear.
        for (i, answer) in [k1.seal_bytes(b"a0"), k1.seal_bytes(b"a1"), b"a2".to_vec()]
            .into_iter()
            .enumerate()
        {
            sqlx::query(
                "INSERT INTO request_log (method, subject, request_id, request_hash, response, created_micros)
                 VALUES ('M', 's', $1, 'h', $2, 1)",
            )
            .bind(format!("r{i}"))
            .bind(answer)
            .execute(db.pool())
            .await
            .unwrap();
        }
        fields::add_key(&path, true).unwrap();
        let k2 = FieldKeys::load_or_create(&path, Algorithm::Sm4Gcm).unwrap();
        let columns = [PEOPLE, REQUEST_LOG];
        assert_eq!(
            reseal::pending(&db, &k2, &columns).await.unwrap(),
            vec![
                ("people.mobile".to_string(), 4),
                ("request_log.response".to_string(), 3)
            ],
            "{label}"
        );
        let now = time::OffsetDateTime::now_utc();
        let done = reseal::reseal(&db, &k2, "kit", "qaward-local", now, &columns, 2)
            .await
            .unwrap();
        assert_eq!(
            done,
            Resealed {
                resealed: 7,
                unreadable: 0
            },
            "{label}"
        );
        let after = texts(&db).await;
        for (stored, want) in after.iter().zip(plain) {
            assert_eq!(k2.open(stored).unwrap(), want, "{label}: every value reads");
            if !want.is_empty() {
                assert_eq!(
                    FieldKeys::key_id_of(stored.as_bytes()),
                    Some("k2"),
                    "{label}"
                );
            }
        }
        let answers: Vec<Vec<u8>> =
            sqlx::query("SELECT response FROM request_log ORDER BY request_id")
                .fetch_all(db.pool())
                .await
                .unwrap()
                .iter()
                .map(|r| r.try_get(0).unwrap())
                .collect();
        for (i, a) in answers.iter().enumerate() {
            assert_eq!(FieldKeys::key_id_of(a), Some("k2"), "{label}");
            assert_eq!(k2.open_bytes(a).unwrap(), format!("a{i}").into_bytes());
        }
        assert!(
            reseal::pending(&db, &k2, &columns)
                .await
                .unwrap()
                .iter()
                .all(|(_, n)| *n == 0),
            "{label}"
        );
        qaward_kit::audit::sequence_all(&db).await.unwrap();
        // On the record, one entry a batch: 4 people in two batches, 3 answers in two.
        let records: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'fields.reseal'")
                .fetch_one(db.pool())
                .await
                .unwrap()
                .try_get("n")
                .unwrap();
        assert_eq!(records, 4, "{label}");
        // A rerun has nothing to do.
        assert_eq!(
            reseal::reseal(&db, &k2, "kit", "qaward-local", now, &columns, 2)
                .await
                .unwrap(),
            Resealed::default(),
            "{label}"
        );
        // A value under a key the file no longer holds is counted, left alone, and does not
        // stop the run.
        let stranger = FieldKeys::ephemeral(Algorithm::Sm4Gcm);
        let lost = stranger.seal("13900000000").replace(":k1:", ":k7:");
        sqlx::query("INSERT INTO people (id, mobile) VALUES ('p9', $1)")
            .bind(&lost)
            .execute(db.pool())
            .await
            .unwrap();
        assert_eq!(
            reseal::reseal(&db, &k2, "kit", "qaward-local", now, &columns, 2)
                .await
                .unwrap(),
            Resealed {
                resealed: 0,
                unreadable: 1
            },
            "{label}"
        );
        assert_eq!(texts(&db).await.last().unwrap(), &lost, "{label}");
    }
}
