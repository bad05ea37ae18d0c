//! Evidence files: uploads streamed in chunks, checked and stored with their digest.

use qaward_kit::{
    Error, Result, audit::AuditRecord, change, change::Done, clock::unix_micros,
    error::FieldViolation, idempotency::RequestKey,
};
use qaward_proto::qaward::applications::v1 as pb;
use tonic::{Request, Response, Status, Streaming};

use crate::{
    domain::{Explanation, evidence, refused, stage::Stage},
    store::{self, EvidenceRow, stage_of},
};

use super::{
    ApplicationsApi,
    access::{load, only_the_enterprise},
    caller,
    convert::evidence_pb,
    names::application_name,
};

/// Chunks of an upload are at most this large (the client's choice below it).
pub const MAX_CHUNK_BYTES: usize = 4 * 1024 * 1024;

impl ApplicationsApi {
    pub(crate) async fn intake_upload(
        &self,
        request: Request<Streaming<pb::UploadEvidenceRequest>>,
    ) -> Result<Response<pb::EvidenceFile>, Status> {
        let c = caller(&request)?;
        let mut stream = request.into_inner();
        let run = async {
            let first = stream
                .message()
                .await
                .map_err(|s| Error::invalid("header", s.message().to_string()))?
                .ok_or_else(|| Error::invalid("header", "the first message must be the header"))?;
            let Some(pb::upload_evidence_request::Part::Header(h)) = first.part.clone() else {
                return Err(Error::invalid(
                    "header",
                    "the first message must be the header",
                ));
            };
            let (p, y, code) = application_name(&h.parent, "header.parent")?;
            only_the_enterprise(&c, code.as_str())?;
            let key = RequestKey::new("UploadEvidence", &c, &first.request_id, &first)?;
            // A retry is answered before the state it reads below has moved on (AIP-155).
            if let Some(done) = change::recall(self.db(), &key).await? {
                return Ok(done);
            }
            let mut bad = Vec::new();
            if !evidence::valid_file_name(&h.file_name) {
                bad.push(FieldViolation::new(
                    "header.file_name",
                    "must be 1-200 characters without '/', '\\' or control characters",
                ));
            }
            if !evidence::is_accepted(&h.content_type) {
                bad.push(FieldViolation::new(
                    "header.content_type",
                    format!("must be one of {}", evidence::accepted().join(", ")),
                ));
            }
            let certificate = match pb::EvidenceKind::try_from(h.kind) {
                Ok(pb::EvidenceKind::Certificate) => true,
                Ok(_) => false,
                Err(_) => {
                    bad.push(FieldViolation::new("header.kind", "is not an EvidenceKind"));
                    false
                }
            };
            if let Some(why) = evidence::issuer_problem(certificate, &h.issued_by) {
                bad.push(FieldViolation::new("header.issued_by", why));
            }
            if h.size_bytes <= 0 || h.size_bytes as u64 > evidence::MAX_BYTES {
                bad.push(FieldViolation::new(
                    "header.size_bytes",
                    format!("must be 1-{} bytes (50 MiB)", evidence::MAX_BYTES),
                ));
            }
            if !bad.is_empty() {
                return Err(Error::invalid_fields(bad));
            }
            {
                let mut conn = self.db().pool().acquire().await?;
                let l = load(&mut conn, &p, y, &code).await?;
                if stage_of(&l.row)? != Stage::Draft {
                    return Err(refused(Explanation::new(
                        "R-05",
                        "NOT_A_DRAFT",
                        "申报提交后不能再上传证明材料",
                    )));
                }
                if store::evidence_of(&mut conn, &l.row.id).await?.len() >= evidence::MAX_FILES {
                    return Err(Error::invalid(
                        "header",
                        format!(
                            "an application carries at most {} files",
                            evidence::MAX_FILES
                        ),
                    ));
                }
            }
            let id = self.new_id();
            let mut w = self
                .blobs()
                .writer(&id)
                .await
                .map_err(|e| Error::internal(format_args!("blob store: {e}")))?;
            let declared = h.size_bytes as u64;
            let received = async {
                while let Some(msg) = stream
                    .message()
                    .await
                    .map_err(|s| Error::invalid("chunk", s.message().to_string()))?
                {
                    let Some(pb::upload_evidence_request::Part::Chunk(chunk)) = msg.part else {
                        return Err(Error::invalid(
                            "header",
                            "only the first message is a header",
                        ));
                    };
                    if chunk.len() > MAX_CHUNK_BYTES {
                        return Err(Error::invalid(
                            "chunk",
                            format!("chunks are at most {MAX_CHUNK_BYTES} bytes"),
                        ));
                    }
                    if w.size() == 0 && !evidence::matches(&h.content_type, &chunk) {
                        return Err(Error::invalid(
                            "header.content_type",
                            format!("the file is not {}", h.content_type),
                        ));
                    }
                    if w.size() + chunk.len() as u64 > declared {
                        return Err(Error::invalid(
                            "header.size_bytes",
                            format!("the file is larger than the declared {declared} bytes"),
                        ));
                    }
                    w.write(&chunk)
                        .await
                        .map_err(|e| Error::internal(format_args!("blob store: {e}")))?;
                }
                if w.size() != declared {
                    return Err(Error::invalid(
                        "header.size_bytes",
                        format!("declared {declared} bytes, received {}", w.size()),
                    ));
                }
                Ok(())
            }
            .await;
            if let Err(e) = received {
                w.abort().await;
                return Err(e);
            }
            let (sha, size) = w
                .finish()
                .await
                .map_err(|e| Error::internal(format_args!("blob store: {e}")))?;
            let now = self.now();
            self.change(key, |mut tx| async move {
                let l = load(&mut tx, &p, y, &code).await?;
                if stage_of(&l.row)? != Stage::Draft {
                    return Err(refused(Explanation::new(
                        "R-05",
                        "NOT_A_DRAFT",
                        "申报提交后不能再上传证明材料",
                    )));
                }
                let row = EvidenceRow {
                    id,
                    application_id: l.row.id.clone(),
                    file_name: h.file_name.clone(),
                    content_type: h.content_type.clone(),
                    size_bytes: size as i64,
                    sha256: sha.clone(),
                    created_micros: unix_micros(now),
                    kind: if certificate { "CERTIFICATE" } else { "SUPPORTING" }.into(),
                    issued_by: h.issued_by.trim().to_string(),
                };
                store::insert_evidence(&mut tx, &row).await?;
                let response = evidence_pb(&h.parent, &row);
                let record = AuditRecord::by(&c, "evidence.upload", response.name.clone())
                    .because("R-05")
                    .with_detail(serde_json::json!({ "sha256": sha, "size_bytes": size, "content_type": h.content_type }));
                Ok(Done::new(tx, record, response))
            })
            .await
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }
}
