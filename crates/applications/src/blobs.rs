//! The blob store for evidence files: content-addressed by SHA-256 under
//! `{data_dir}/blobs/{first two hex digits}/{sha256}`, written to a temporary file, synced, then
//! renamed into place — so a file is either whole under its hash or not there at all. The same
//! content uploaded twice is stored once. With `blobs.s3.bucket` configured, the synced file is
//! uploaded to the bucket under `{prefix}{first two hex digits}/{sha256}` instead (unless the
//! bucket has it already) and the local copy removed: the upload is answered only once the
//! store holds the whole file.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use crate::s3::Bucket;

use sha2::{Digest, Sha256};
use tokio::{fs, io::AsyncWriteExt};

#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
    bucket: Option<Arc<Bucket>>,
}

/// A blob being written.
pub struct BlobWriter {
    file: fs::File,
    temp: PathBuf,
    root: PathBuf,
    bucket: Option<Arc<Bucket>>,
    hasher: Sha256,
    size: u64,
}

impl BlobStore {
    /// Blobs on the local filesystem under `data_dir/blobs`.
    pub fn new(data_dir: &Path) -> Self {
        BlobStore {
            root: data_dir.join("blobs"),
            bucket: None,
        }
    }

    /// The store the configuration names: the S3 bucket when `blobs.s3.bucket` is set (files
    /// are spooled under `data_dir/blobs/tmp` while they arrive), else the local filesystem.
    pub fn from_config(c: &qaward_kit::config::Config) -> Result<Self, String> {
        let mut store = BlobStore::new(&c.data_dir);
        if !c.blobs.s3.bucket.is_empty() {
            store.bucket = Some(Arc::new(Bucket::new(&c.blobs.s3)?));
        }
        Ok(store)
    }

    /// The whole blob, from wherever it is kept; `None` when there is none with this hash.
    pub async fn read(&self, sha256: &str) -> std::io::Result<Option<Vec<u8>>> {
        if let Some(b) = &self.bucket {
            return b
                .get(&b.key_of(sha256))
                .await
                .map(|o| o.map(|bytes| bytes.to_vec()))
                .map_err(std::io::Error::other);
        }
        match fs::read(self.path_of(sha256)).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Where the blob with this hash lives.
    pub fn path_of(&self, sha256: &str) -> PathBuf {
        self.root.join(&sha256[..2.min(sha256.len())]).join(sha256)
    }

    pub async fn writer(&self, unique: &str) -> std::io::Result<BlobWriter> {
        let tmp = self.root.join("tmp");
        fs::create_dir_all(&tmp).await?;
        let temp = tmp.join(format!("{unique}.part"));
        Ok(BlobWriter {
            file: fs::File::create(&temp).await?,
            temp,
            root: self.root.clone(),
            bucket: self.bucket.clone(),
            hasher: Sha256::new(),
            size: 0,
        })
    }
}

impl BlobWriter {
    pub async fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        self.file.write_all(chunk).await
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Syncs and moves the blob under its hash; returns the hash and the size.
    pub async fn finish(mut self) -> std::io::Result<(String, u64)> {
        self.file.flush().await?;
        self.file.sync_all().await?;
        let sha = hex::encode(self.hasher.finalize());
        if let Some(b) = &self.bucket {
            let key = b.key_of(&sha);
            let stored = match b.exists(&key).await {
                Ok(true) => Ok(()),
                Ok(false) => b.put_file(&key, &self.temp, &sha).await,
                Err(e) => Err(e),
            };
            drop(self.file);
            let _ = fs::remove_file(&self.temp).await;
            return stored
                .map(|()| (sha, self.size))
                .map_err(std::io::Error::other);
        }
        let dir = self.root.join(&sha[..2]);
        fs::create_dir_all(&dir).await?;
        fs::rename(&self.temp, dir.join(&sha)).await?;
        Ok((sha, self.size))
    }

    /// Drops the partial file.
    pub async fn abort(self) {
        drop(self.file);
        let _ = fs::remove_file(&self.temp).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn blobs_are_stored_whole_under_their_hash() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::new(dir.path());
        let mut w = store.writer("a").await.unwrap();
        w.write(b"%PDF-1.7 ").await.unwrap();
        w.write(b"quality manual").await.unwrap();
        let (sha, size) = w.finish().await.unwrap();
        assert_eq!(size, 23);
        assert_eq!(sha, hex::encode(Sha256::digest(b"%PDF-1.7 quality manual")));
        assert_eq!(
            std::fs::read(store.path_of(&sha)).unwrap(),
            b"%PDF-1.7 quality manual"
        );
        let w = store.writer("b").await.unwrap();
        w.abort().await;
        assert_eq!(
            std::fs::read_dir(dir.path().join("blobs/tmp"))
                .unwrap()
                .count(),
            0
        );
    }
}
