//! The fetch plan: every distinct thing to fetch, once. Per-variable
//! references and bundles are reduced to [`Request`]s; identical requests
//! collapse; backends then batch them by service and region.

use std::collections::BTreeSet;

use crate::reference::{Bundle, KmsBlob, S3Object, SecretVersion, SsmParam, Target};

/// One thing to fetch from AWS.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Request {
    SsmParam(SsmParam),
    SsmPath {
        path: String,
        region: Option<String>,
    },
    Secret(SecretVersion),
    S3(S3Object),
    Kms(KmsBlob),
}

impl Request {
    pub fn for_target(target: &Target) -> Request {
        match target {
            Target::Ssm(p) => Request::SsmParam(p.clone()),
            Target::Secret(s) => Request::Secret(s.version.clone()),
            Target::S3(s) => Request::S3(s.object.clone()),
            Target::Kms(k) => Request::Kms(k.clone()),
        }
    }

    pub fn for_bundle(bundle: &Bundle) -> Request {
        match bundle {
            Bundle::SsmPath { path, region } => Request::SsmPath {
                path: path.clone(),
                region: region.clone(),
            },
            Bundle::Secret(v) => Request::Secret(v.clone()),
            Bundle::S3(o) => Request::S3(o.clone()),
        }
    }

    /// A short description for logs and timeouts (no values: requests hold none).
    pub fn describe(&self) -> String {
        match self {
            Request::SsmParam(p) => format!("ssm:{}", p.api_name()),
            Request::SsmPath { path, .. } => format!("ssm:{path}"),
            Request::Secret(v) => format!("sm:{}", v.secret_id),
            Request::S3(o) => format!("s3://{}/{}", o.bucket, o.key),
            Request::Kms(_) => "kms:…".to_owned(),
        }
    }
}

/// The deduplicated set of requests, split by backend.
#[derive(Debug, Default)]
pub struct Plan {
    pub ssm_params: Vec<SsmParam>,
    pub ssm_paths: Vec<(String, Option<String>)>,
    pub secrets: Vec<SecretVersion>,
    pub s3_objects: Vec<S3Object>,
    pub kms_blobs: Vec<KmsBlob>,
}

impl Plan {
    pub fn new<'a>(requests: impl IntoIterator<Item = &'a Request>) -> Plan {
        let unique: BTreeSet<&Request> = requests.into_iter().collect();
        let mut plan = Plan::default();
        for request in unique {
            match request.clone() {
                Request::SsmParam(p) => plan.ssm_params.push(p),
                Request::SsmPath { path, region } => plan.ssm_paths.push((path, region)),
                Request::Secret(v) => plan.secrets.push(v),
                Request::S3(o) => plan.s3_objects.push(o),
                Request::Kms(k) => plan.kms_blobs.push(k),
            }
        }
        plan
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn len(&self) -> usize {
        self.ssm_params.len()
            + self.ssm_paths.len()
            + self.secrets.len()
            + self.s3_objects.len()
            + self.kms_blobs.len()
    }

    pub fn requests(&self) -> Vec<Request> {
        let mut all = Vec::with_capacity(self.len());
        all.extend(self.ssm_params.iter().cloned().map(Request::SsmParam));
        all.extend(
            self.ssm_paths
                .iter()
                .cloned()
                .map(|(path, region)| Request::SsmPath { path, region }),
        );
        all.extend(self.secrets.iter().cloned().map(Request::Secret));
        all.extend(self.s3_objects.iter().cloned().map(Request::S3));
        all.extend(self.kms_blobs.iter().cloned().map(Request::Kms));
        all
    }
}

/// Splits `items` into batches of at most `size` such that no batch holds two
/// items with the same `key` (so that a batch answer can be matched by key).
pub fn batches<T: Clone, K: PartialEq>(
    items: &[T],
    size: usize,
    key: impl Fn(&T) -> K,
) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    for item in items {
        let k = key(item);
        match out
            .iter_mut()
            .find(|b| b.len() < size && !b.iter().any(|other| key(other) == k))
        {
            Some(batch) => batch.push(item.clone()),
            None => out.push(vec![item.clone()]),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::parse_reference;

    #[test]
    fn identical_references_are_fetched_once() {
        let refs = [
            "ssm:/a",
            "ssm:/a",
            "ssm:/a:2",
            "sm:x#A",
            "sm:x#B",
            "sm:x?version-stage=AWSPREVIOUS",
        ];
        let requests: Vec<Request> = refs
            .iter()
            .map(|r| Request::for_target(&parse_reference(r).unwrap().target))
            .collect();
        let plan = Plan::new(&requests);
        assert_eq!(plan.ssm_params.len(), 2);
        assert_eq!(plan.secrets.len(), 2);
        assert_eq!(plan.len(), 4);
    }

    #[test]
    fn batches_respect_size_and_unique_keys() {
        let items: Vec<(u32, u32)> = (0..25).map(|i| (i, i)).chain([(3, 99), (3, 100)]).collect();
        let b = batches(&items, 10, |x| x.0);
        assert_eq!(b.iter().map(Vec::len).sum::<usize>(), 27);
        assert!(b.iter().all(|batch| batch.len() <= 10));
        for batch in &b {
            let mut keys: Vec<u32> = batch.iter().map(|x| x.0).collect();
            keys.sort();
            keys.dedup();
            assert_eq!(keys.len(), batch.len());
        }
        assert_eq!(b.len(), 4);
    }
}
