//! The blob store for evidence files, content-addressed by SHA-256: a file lives under
//! `{prefix}{first two hex digits}/{sha256}`, in `{data_dir}/blobs` on the local filesystem or,
//! with `blobs.s3.bucket` configured, in an S3-compatible bucket — both through `object_store`.
//!
//! An upload streams to a temporary object (`{prefix}tmp/{unique}`: a multipart upload on S3,
//! a staged file on disk) while its hash is computed; once the store holds the whole of it, it
//! is moved under its hash (unless the store has that content already) and only then answered.
//! So a file is either whole under its hash or not there at all, nothing is read into memory
//! whole on the way in, and the same content uploaded twice is stored once.

use std::sync::Arc;

use object_store::{
    ObjectStore, ObjectStoreExt, aws::AmazonS3Builder, buffered::BufWriter, local::LocalFileSystem,
    path::Path,
};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

#[derive(Debug, Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    /// Prepended to every key (`blobs.s3.prefix`; empty on the filesystem).
    prefix: String,
}

/// A blob being written.
pub struct BlobWriter {
    upload: BufWriter,
    temp: Path,
    store: Arc<dyn ObjectStore>,
    prefix: String,
    hasher: Sha256,
    size: u64,
}

fn failed(e: object_store::Error) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl BlobStore {
    /// Blobs on the local filesystem under `data_dir/blobs`; a directory that cannot be made
    /// is an error here, not a store somewhere else.
    pub fn new(data_dir: &std::path::Path) -> Result<Self, String> {
        let root = data_dir.join("blobs");
        let unusable = |e: &dyn std::fmt::Display| format!("{}: {e}", root.display());
        std::fs::create_dir_all(&root).map_err(|e| unusable(&e))?;
        let store = LocalFileSystem::new_with_prefix(&root).map_err(|e| unusable(&e))?;
        Ok(BlobStore {
            // Synced before it is moved under its hash, as the hand-written store did: a file
            // acknowledged is on disk, whole, after a crash.
            store: Arc::new(store.with_fsync(true)),
            prefix: String::new(),
        })
    }

    /// The store the configuration names: the S3 bucket when `blobs.s3.bucket` is set, else the
    /// local filesystem.
    pub fn from_config(c: &qaward_kit::config::Config) -> Result<Self, String> {
        let s3 = &c.blobs.s3;
        if s3.bucket.is_empty() {
            return BlobStore::new(&c.data_dir);
        }
        // TLS for the bucket is rustls with ring, as everywhere in qaward; reqwest takes the
        // process's provider.
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        let endpoint = s3.endpoint.trim_end_matches('/');
        let options = object_store::ClientOptions::new()
            .with_allow_http(endpoint.starts_with("http://"))
            .with_timeout(std::time::Duration::from_millis(s3.timeout_ms.max(1)));
        let bucket = AmazonS3Builder::new()
            .with_endpoint(endpoint)
            .with_bucket_name(&s3.bucket)
            .with_region(&s3.region)
            .with_access_key_id(&s3.access_key_id)
            .with_secret_access_key(s3.secret_access_key.expose())
            .with_virtual_hosted_style_request(false)
            .with_client_options(options)
            .build()
            .map_err(|e| format!("blobs.s3: {e}"))?;
        Ok(BlobStore {
            store: Arc::new(bucket),
            prefix: s3.prefix.clone(),
        })
    }

    /// Where the blob with this hash is kept in the store.
    fn key_of(prefix: &str, sha256: &str) -> Path {
        Path::from(format!(
            "{prefix}{}/{sha256}",
            &sha256[..2.min(sha256.len())]
        ))
    }

    /// The whole blob; `None` when there is none with this hash.
    pub async fn read(&self, sha256: &str) -> std::io::Result<Option<Vec<u8>>> {
        match self.store.get(&Self::key_of(&self.prefix, sha256)).await {
            Ok(found) => Ok(Some(found.bytes().await.map_err(failed)?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(failed(e)),
        }
    }

    /// Removes the blob with this hash; removing one that is not there is no error.
    pub async fn delete(&self, sha256: &str) -> std::io::Result<()> {
        match self.store.delete(&Self::key_of(&self.prefix, sha256)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(failed(e)),
        }
    }

    /// Removes, every hour, the files of purged drafts that no evidence row names any more
    /// (R-54; queued by the drafts' purge in its transaction, so a crash loses no entry).
    pub fn sweep_in_background(self, db: qaward_kit::db::Database) {
        tokio::spawn(async move {
            loop {
                match self.sweep(&db).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(files = n, "evidence files of purged drafts removed (R-54)")
                    }
                    Err(e) => tracing::warn!(error = %e, "blob sweep failed; retried in an hour"),
                }
                tokio::time::sleep(std::time::Duration::from_secs(3_600)).await;
            }
        });
    }

    /// One sweep: how many files it removed.
    pub async fn sweep(&self, db: &qaward_kit::db::Database) -> qaward_kit::Result<u64> {
        let mut removed = 0;
        loop {
            let queued = crate::store::blobs_to_delete(db, 100).await?;
            if queued.is_empty() {
                return Ok(removed);
            }
            for sha in queued {
                self.delete(&sha)
                    .await
                    .map_err(qaward_kit::Error::internal)?;
                crate::store::blob_deleted(db, &sha).await?;
                removed += 1;
            }
        }
    }

    /// A writer for one upload; `unique` names its temporary object.
    pub async fn writer(&self, unique: &str) -> std::io::Result<BlobWriter> {
        let temp = Path::from(format!("{}tmp/{unique}", self.prefix));
        Ok(BlobWriter {
            upload: BufWriter::new(self.store.clone(), temp.clone()),
            temp,
            store: self.store.clone(),
            prefix: self.prefix.clone(),
            hasher: Sha256::new(),
            size: 0,
        })
    }
}

impl BlobWriter {
    pub async fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        self.upload.write_all(chunk).await
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Completes the upload and moves it under its hash; returns the hash and the size.
    pub async fn finish(mut self) -> std::io::Result<(String, u64)> {
        // A failed shutdown has already given up the upload (a multipart one is aborted);
        // nothing of it is under its hash.
        if let Err(e) = self.upload.shutdown().await {
            let _ = self.store.delete(&self.temp).await;
            return Err(e);
        }
        let sha = hex::encode(self.hasher.finalize());
        let key = BlobStore::key_of(&self.prefix, &sha);
        let stored = match self.store.head(&key).await {
            // The same content is there already: keep it, drop this copy.
            Ok(_) => self.store.delete(&self.temp).await,
            Err(object_store::Error::NotFound { .. }) => self.store.rename(&self.temp, &key).await,
            Err(e) => Err(e),
        };
        if stored.is_err() {
            let _ = self.store.delete(&self.temp).await;
        }
        stored.map(|()| (sha, self.size)).map_err(failed)
    }

    /// Abandons the upload: nothing of it stays.
    pub async fn abort(mut self) {
        let _ = self.upload.abort().await;
        let _ = self.store.delete(&self.temp).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn blobs_are_stored_whole_under_their_hash() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::new(dir.path()).unwrap();
        let mut w = store.writer("a").await.unwrap();
        w.write(b"%PDF-1.7 ").await.unwrap();
        w.write(b"quality manual").await.unwrap();
        let (sha, size) = w.finish().await.unwrap();
        assert_eq!(size, 23);
        assert_eq!(sha, hex::encode(Sha256::digest(b"%PDF-1.7 quality manual")));
        let path = dir.path().join("blobs").join(&sha[..2]).join(&sha);
        assert_eq!(std::fs::read(path).unwrap(), b"%PDF-1.7 quality manual");
        assert_eq!(
            store.read(&sha).await.unwrap().as_deref(),
            Some(&b"%PDF-1.7 quality manual"[..])
        );
        // The same content again is stored once.
        let mut again = store.writer("c").await.unwrap();
        again.write(b"%PDF-1.7 quality manual").await.unwrap();
        assert_eq!(again.finish().await.unwrap().0, sha);
        let mut w = store.writer("b").await.unwrap();
        w.write(b"partial").await.unwrap();
        w.abort().await;
        let leftovers = std::fs::read_dir(dir.path().join("blobs/tmp"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(leftovers, 0, "no temporary object is left behind");
        assert_eq!(store.read(&"0".repeat(64)).await.unwrap(), None);
    }
}
