//! Where a resolution's answers land as they arrive, with what each request
//! went through so far: what the deadline's message reports for a request
//! that has no answer.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::plan::{Answer, Request};

/// Where backends put their answers as they arrive, and what each request
/// went through so far (attempts, the last transient error: see
/// [`super::retry`]). When the deadline passes, whatever has no answer in here is
/// reported as timed out, with its progress.
#[derive(Default)]
pub struct Sink {
    answers: RefCell<HashMap<Request, Answer>>,
    progress: RefCell<HashMap<Request, Progress>>,
}

impl Sink {
    pub fn put(&self, request: Request, answer: Answer) {
        self.answers.borrow_mut().insert(request, answer);
    }

    /// An attempt for `requests` starts; `step` names a call made on their
    /// behalf before their own (`AssumeRole ARN`), `None` their own. A new
    /// step starts their progress afresh.
    pub fn attempt_started(&self, requests: &[Request], step: Option<&str>) {
        let mut progress = self.progress.borrow_mut();
        for r in requests {
            let p = progress.entry(r.clone()).or_default();
            if p.step.as_deref() != step {
                *p = Progress {
                    step: step.map(str::to_owned),
                    ..Progress::default()
                };
            }
            p.started();
        }
    }

    pub fn attempt_failed(&self, requests: &[Request], why: String) {
        let mut progress = self.progress.borrow_mut();
        for r in requests {
            progress.entry(r.clone()).or_default().failed(why.clone());
        }
    }

    /// The answers, and the progress of every request that made attempts.
    pub fn into_inner(self) -> (HashMap<Request, Answer>, HashMap<Request, Progress>) {
        (self.answers.into_inner(), self.progress.into_inner())
    }
}

/// What a request went through so far (see [`Sink`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// The call made on the request's behalf (`AssumeRole ARN`), `None`:
    /// its own.
    pub step: Option<String>,
    pub attempts: u32,
    pub failed: u32,
    /// The last failure, described.
    pub last: Option<String>,
    /// Did every failed attempt fail the same way?
    pub same: bool,
}

impl Progress {
    pub fn started(&mut self) {
        self.attempts += 1;
    }

    pub fn failed(&mut self, why: String) {
        self.same = self.failed == 0 || (self.same && self.last.as_deref() == Some(&why));
        self.failed += 1;
        self.last = Some(why);
    }

    /// Why a request is still unanswered, for the deadline's message: `None`
    /// when its own call made no attempt that failed.
    pub fn describe(&self) -> Option<String> {
        let pending = self.attempts > self.failed;
        let mut text = match (&self.last, self.failed, self.same) {
            (None, _, _) => String::new(),
            (Some(last), 1, _) => format!("{last} on the first attempt"),
            (Some(last), n, true) => format!("{last} on all {n} attempts"),
            (Some(last), n, false) => format!("{n} attempts failed, the last {last}"),
        };
        if pending && !text.is_empty() {
            text.push_str(&format!(", attempt {} unanswered", self.attempts));
        } else if pending {
            text = format!("attempt {} unanswered", self.attempts);
        }
        match &self.step {
            Some(step) => Some(format!("{step}: {text}")),
            None if self.last.is_some() => Some(text),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_says_how_often_and_why() {
        let mut p = Progress::default();
        assert_eq!(p.describe(), None);
        p.started();
        assert_eq!(p.describe(), None);
        p.failed("throttled (ThrottlingException)".into());
        assert_eq!(
            p.describe().unwrap(),
            "throttled (ThrottlingException) on the first attempt"
        );
        for _ in 0..13 {
            p.started();
            p.failed("throttled (ThrottlingException)".into());
        }
        assert_eq!(
            p.describe().unwrap(),
            "throttled (ThrottlingException) on all 14 attempts"
        );
        p.started();
        assert_eq!(
            p.describe().unwrap(),
            "throttled (ThrottlingException) on all 14 attempts, attempt 15 unanswered"
        );
        p.failed("ServiceUnavailable (HTTP 503)".into());
        assert_eq!(
            p.describe().unwrap(),
            "15 attempts failed, the last ServiceUnavailable (HTTP 503)"
        );
    }

    #[test]
    fn a_step_on_the_requests_behalf_is_named_and_counted_apart() {
        let sink = Sink::default();
        let r = Request::Kms(crate::reference::KmsBlob {
            ciphertext: vec![1, 2, 3],
            region: None,
            role: None,
        });
        let progress = |sink: Sink| sink.into_inner().1.remove(&r).unwrap();
        let role = Some("AssumeRole arn:aws:iam::123456789012:role/app");
        // The role's AssumeRole, still unanswered: named even without a failure.
        sink.attempt_started(std::slice::from_ref(&r), role);
        let p = progress(sink);
        assert_eq!(
            p.describe().unwrap(),
            "AssumeRole arn:aws:iam::123456789012:role/app: attempt 1 unanswered"
        );
        // Throttled twice, then the request's own call: counted afresh.
        let sink = Sink::default();
        for _ in 0..2 {
            sink.attempt_started(std::slice::from_ref(&r), role);
            sink.attempt_failed(std::slice::from_ref(&r), "throttled (Throttling)".into());
        }
        assert_eq!(
            progress(sink).describe().unwrap(),
            "AssumeRole arn:aws:iam::123456789012:role/app: throttled (Throttling) on all 2 attempts"
        );
        let sink = Sink::default();
        sink.attempt_started(std::slice::from_ref(&r), role);
        sink.attempt_failed(std::slice::from_ref(&r), "throttled (Throttling)".into());
        sink.attempt_started(std::slice::from_ref(&r), None);
        let p = progress(sink);
        assert_eq!((p.step.as_deref(), p.attempts, p.failed), (None, 1, 0));
        assert_eq!(p.describe(), None);
    }
}
