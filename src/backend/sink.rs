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

    pub fn attempt_started(&self, requests: &[Request]) {
        let mut progress = self.progress.borrow_mut();
        for r in requests {
            progress.entry(r.clone()).or_default().started();
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
    /// when no attempt has failed.
    pub fn describe(&self) -> Option<String> {
        let last = self.last.as_ref()?;
        let pending = self.attempts > self.failed;
        let mut text = match (self.failed, self.same) {
            (1, _) => format!("{last} on the first attempt"),
            (n, true) => format!("{last} on all {n} attempts"),
            (n, false) => format!("{n} attempts failed, the last {last}"),
        };
        if pending {
            text.push_str(&format!(", attempt {} unanswered", self.attempts));
        }
        Some(text)
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
}
