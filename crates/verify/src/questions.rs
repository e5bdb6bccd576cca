//! Security questions.
//!
//! Rules (`docs/security.md`): off by default, never one of the required methods (see
//! [`MethodKind::counts_toward_required`]), answers normalised before hashing, argon2id
//! (m ≥ 19 MiB, t = 2, p = 1) with a salt per answer, hashing on the bounded pool ([`Hasher`]).
//! Enrollment also refuses answers shorter than 3 characters and the same answer given to two
//! questions (one guess would then open two).
//!
//! ## Normalisation
//! [`normalize_answer`]: Unicode NFKC (full-width letters, ligatures and composed/decomposed
//! accents compare equal), lower case, runs of whitespace collapsed to one space, leading and
//! trailing punctuation and spaces removed. `"  Fluffy!! "`, `"FLUFFY"` and `"ｆｌｕｆｆｙ"` are one
//! answer. Inner punctuation is kept (`"o'brien"` ≠ `"obrien"`), and so are symbols such as
//! `+` and `#` (`"c++"` ≠ `"c"`).
//!
//! ## Store contract
//! Store [`EnrolledAnswer`]s (question id + PHC string). Nothing changes on verification, so no
//! compare-and-set is needed; attempts are throttled by the flow (the store's `hit`) before
//! verification.

use std::collections::BTreeSet;
use std::fmt;

use latchkey_types::Secret;
use time::OffsetDateTime;
use unicode_normalization::UnicodeNormalization;

use crate::hasher::{HashError, Hasher, PhcHash, Reservation};
use crate::method::{Method, MethodKind, Outcome, Subject};

/// The shortest accepted answer, in characters after normalisation.
pub const MIN_ANSWER_CHARS: usize = 3;
/// The longest accepted answer, in characters after normalisation (bounds hashing input).
pub const MAX_ANSWER_CHARS: usize = 200;

/// Why answers could not be enrolled or checked. Never contains an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuestionError {
    /// The configuration breaks a rule.
    #[error("invalid security-question configuration: {0}")]
    Config(&'static str),
    /// Not a usable question id.
    #[error("not a question id (1 to 64 characters: a-z, 0-9, '-', '_')")]
    InvalidId,
    /// Wrong number of answers.
    #[error("{expected} answers are required, {given} given")]
    WrongCount {
        /// How many are required.
        expected: usize,
        /// How many were given.
        given: usize,
    },
    /// A question was answered twice.
    #[error("question {0} answered more than once")]
    DuplicateQuestion(QuestionId),
    /// An answer is too short (after normalisation).
    #[error("the answer to {0} is too short (at least 3 characters)")]
    TooShort(QuestionId),
    /// An answer is too long.
    #[error("the answer to {0} is too long (at most 200 characters)")]
    TooLong(QuestionId),
    /// Two questions have the same answer (after normalisation).
    #[error("the answers to {0} and {1} are the same; each question needs its own answer")]
    DuplicateAnswer(QuestionId, QuestionId),
    /// Hashing failed or the pool was busy.
    #[error(transparent)]
    Hash(#[from] HashError),
}

/// A question's id (from configuration, e.g. `first-pet`); the text lives in the message files.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QuestionId(String);

impl QuestionId {
    /// A question id: 1 to 64 characters from `a-z`, `0-9`, `-`, `_`.
    pub fn new(id: &str) -> Result<Self, QuestionError> {
        let ok = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(id.to_string()))
        } else {
            Err(QuestionError::InvalidId)
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for QuestionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for QuestionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QuestionId({})", self.0)
    }
}

/// How many questions are enrolled and asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuestionsConfig {
    /// Answers a user must enroll (default 3).
    pub enroll_count: usize,
    /// Questions asked at verification, all of which must be right (default 3, at most `enroll_count`).
    pub ask_count: usize,
}

impl Default for QuestionsConfig {
    fn default() -> Self {
        Self {
            enroll_count: 3,
            ask_count: 3,
        }
    }
}

/// One enrolled answer, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolledAnswer {
    /// Which question.
    pub question: QuestionId,
    /// argon2id of the normalised answer.
    pub hash: PhcHash,
}

/// The result of checking answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuestionOutcome {
    /// Every asked question was answered correctly.
    Ok,
    /// At least one answer was wrong or missing (which one is not said).
    Wrong,
}

impl Outcome for QuestionOutcome {
    fn is_accepted(&self) -> bool {
        matches!(self, QuestionOutcome::Ok)
    }
    fn reason(&self) -> &'static str {
        match self {
            QuestionOutcome::Ok => "ok",
            QuestionOutcome::Wrong => "wrong",
        }
    }
}

/// Characters trimmed from both ends of an answer: sentence punctuation, quotes and brackets.
/// Symbols that can carry meaning (`+`, `#`, `&`, `@`, `$`, `%`) are kept.
fn is_edge_punctuation(c: char) -> bool {
    matches!(
        c,
        '.' | ','
            | ';'
            | ':'
            | '!'
            | '?'
            | '\''
            | '"'
            | '`'
            | '('
            | ')'
            | '['
            | ']'
            | '{'
            | '}'
            | '-'
            | '_'
            | '¡'
            | '¿'
            | '«'
            | '»'
            | '‘'
            | '’'
            | '‚'
            | '“'
            | '”'
            | '„'
            | '‹'
            | '›'
            | '…'
            | '–'
            | '—'
            | '。'
            | '、'
            | '！'
            | '？'
            | '「'
            | '」'
    ) || c.is_whitespace()
}

/// The canonical form of an answer: NFKC, lower case, whitespace collapsed, edge punctuation
/// trimmed (see the module docs).
pub fn normalize_answer(answer: &str) -> String {
    // NFKC, then lower case, then NFKC again: lower-casing can produce sequences that are not in
    // normal form (e.g. 'İ' becomes 'i' + combining dot). 'ß' is folded to "ss" as full case
    // folding would, so "Straße" and "STRASSE" are one answer.
    let lowered: String = answer
        .nfkc()
        .flat_map(char::to_lowercase)
        .collect::<String>()
        .replace('ß', "ss");
    let normal: String = lowered.nfkc().collect();
    let collapsed = normal.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed.trim_matches(is_edge_punctuation).to_string()
}

/// The security-questions method.
#[derive(Debug, Clone)]
pub struct SecurityQuestions {
    hasher: Hasher,
    config: QuestionsConfig,
}

impl SecurityQuestions {
    /// The method, hashing through `hasher`.
    pub fn new(hasher: Hasher, config: QuestionsConfig) -> Result<Self, QuestionError> {
        if config.enroll_count == 0
            || config.ask_count == 0
            || config.ask_count > config.enroll_count
        {
            return Err(QuestionError::Config("need 1 ≤ ask_count ≤ enroll_count"));
        }
        if config.enroll_count > 10 {
            return Err(QuestionError::Config("at most 10 questions"));
        }
        Ok(Self { hasher, config })
    }

    /// The configuration.
    pub fn config(&self) -> &QuestionsConfig {
        &self.config
    }

    /// Checks a set of answers against the enrollment rules without hashing (for live feedback
    /// in the form), returning the normalised answers.
    pub fn check_enrollment(
        &self,
        answers: &[(QuestionId, Secret<String>)],
    ) -> Result<Vec<(QuestionId, Secret<String>)>, QuestionError> {
        if answers.len() != self.config.enroll_count {
            return Err(QuestionError::WrongCount {
                expected: self.config.enroll_count,
                given: answers.len(),
            });
        }
        let mut questions = BTreeSet::new();
        let mut normalised: Vec<(QuestionId, Secret<String>)> = Vec::with_capacity(answers.len());
        for (question, answer) in answers {
            if !questions.insert(question.clone()) {
                return Err(QuestionError::DuplicateQuestion(question.clone()));
            }
            let n = normalize_answer(answer.expose());
            let chars = n.chars().count();
            if chars < MIN_ANSWER_CHARS {
                return Err(QuestionError::TooShort(question.clone()));
            }
            if chars > MAX_ANSWER_CHARS {
                return Err(QuestionError::TooLong(question.clone()));
            }
            if let Some((earlier, _)) = normalised.iter().find(|(_, a)| a.expose() == &n) {
                return Err(QuestionError::DuplicateAnswer(
                    earlier.clone(),
                    question.clone(),
                ));
            }
            normalised.push((question.clone(), Secret::new(n)));
        }
        Ok(normalised)
    }

    /// Validates and hashes a full set of answers (one salt each) for storage.
    pub async fn enroll(
        &self,
        answers: &[(QuestionId, Secret<String>)],
    ) -> Result<Vec<EnrolledAnswer>, QuestionError> {
        let normalised = self.check_enrollment(answers)?;
        let (questions, secrets): (Vec<_>, Vec<_>) = normalised.into_iter().unzip();
        let hashes = self.hasher.hash_all(secrets).await?;
        Ok(questions
            .into_iter()
            .zip(hashes)
            .map(|(question, hash)| EnrolledAnswer { question, hash })
            .collect())
    }

    /// Checks answers to the asked questions. `enrolled` is `None` for an unknown user or one
    /// without enrolled answers: the same number of argon2 runs happens against the dummy hash,
    /// so the result (`Wrong`) and the time taken look like a wrong answer. Exactly `ask_count`
    /// verifications run whatever was submitted (missing answers are padded, extra ones
    /// ignored), and every one of them runs (no early exit).
    pub async fn check(
        &self,
        enrolled: Option<&[EnrolledAnswer]>,
        given: Vec<(QuestionId, Secret<String>)>,
    ) -> Result<QuestionOutcome, HashError> {
        let reservation = self.hasher.reserve().await?;
        self.check_reserved(reservation, enrolled, given).await
    }

    /// A hashing permit for a later [`SecurityQuestions::check_reserved`]: [`HashError::Busy`]
    /// now, before the caller charges the attempt, rather than after.
    pub async fn reserve(&self) -> Result<Reservation, HashError> {
        self.hasher.reserve().await
    }

    /// [`SecurityQuestions::check`] under a permit taken with [`SecurityQuestions::reserve`].
    pub async fn check_reserved(
        &self,
        reservation: Reservation,
        enrolled: Option<&[EnrolledAnswer]>,
        given: Vec<(QuestionId, Secret<String>)>,
    ) -> Result<QuestionOutcome, HashError> {
        let ask = self.config.ask_count;
        let distinct: BTreeSet<&QuestionId> = given.iter().map(|(q, _)| q).collect();
        let well_formed = given.len() == ask && distinct.len() == ask;
        let mut pairs: Vec<(Secret<String>, Option<PhcHash>)> = given
            .iter()
            .take(ask)
            .map(|(question, answer)| {
                let hash = enrolled
                    .and_then(|e| e.iter().find(|a| &a.question == question))
                    .map(|a| a.hash.clone());
                (Secret::new(normalize_answer(answer.expose())), hash)
            })
            .collect();
        let all_enrolled = pairs.iter().all(|(_, h)| h.is_some());
        while pairs.len() < ask {
            pairs.push((Secret::new(String::new()), None));
        }
        let results = self.hasher.verify_all_reserved(reservation, pairs).await?;
        let all_right = results.iter().fold(true, |acc, ok| acc & ok);
        Ok(if well_formed && all_enrolled && all_right {
            QuestionOutcome::Ok
        } else {
            QuestionOutcome::Wrong
        })
    }
}

impl Method for SecurityQuestions {
    /// The user's enrolled answers; `None` when there are none (or the user is unknown).
    type Stored = Option<Vec<EnrolledAnswer>>;
    type Answer = Vec<(QuestionId, Secret<String>)>;
    type Outcome = QuestionOutcome;
    type Error = HashError;

    fn kind(&self) -> MethodKind {
        MethodKind::Questions
    }

    async fn verify(
        &self,
        _subject: &Subject,
        stored: &mut Option<Vec<EnrolledAnswer>>,
        answer: Vec<(QuestionId, Secret<String>)>,
        _now: OffsetDateTime,
    ) -> Result<QuestionOutcome, HashError> {
        self.check(stored.as_deref(), answer).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HasherConfig;

    fn q(id: &str) -> QuestionId {
        QuestionId::new(id).unwrap()
    }

    fn a(v: &str) -> Secret<String> {
        Secret::new(v.to_string())
    }

    fn method(enroll: usize, ask: usize) -> SecurityQuestions {
        let hasher = Hasher::new(HasherConfig {
            max_concurrent: 2,
            ..HasherConfig::default()
        })
        .unwrap();
        SecurityQuestions::new(
            hasher,
            QuestionsConfig {
                enroll_count: enroll,
                ask_count: ask,
            },
        )
        .unwrap()
    }

    #[test]
    fn normalisation_cases() {
        for (input, expected) in [
            ("  Fluffy!! ", "fluffy"),
            ("FLUFFY", "fluffy"),
            ("ｆｌｕｆｆｙ", "fluffy"), // full-width (NFKC)
            ("Cafe\u{301}", "café"),    // decomposed accent composes
            ("café", "café"),
            ("New   York\tCity", "new york city"), // whitespace collapsed
            ("\"Rex\".", "rex"),                   // quotes and full stop trimmed
            ("¿Madrid?", "madrid"),
            ("O'Brien", "o'brien"), // inner punctuation kept
            ("C++", "c++"),         // meaningful symbols kept
            ("Straße", "strasse"),
            ("STRASSE", "strasse"),
            ("ﬁsh", "fish"), // ligature (NFKC)
            ("İstanbul", "i\u{307}stanbul"),
            ("...", ""),
        ] {
            assert_eq!(normalize_answer(input), expected, "{input:?}");
        }
    }

    #[test]
    fn question_ids_are_restricted() {
        assert!(QuestionId::new("first-pet").is_ok());
        for bad in ["", "First Pet", "pet?", &"x".repeat(65)] {
            assert!(QuestionId::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn enrollment_rules() {
        let m = method(3, 2);
        let ok = [
            (q("pet"), a("Fluffy")),
            (q("city"), a("Lyon")),
            (q("school"), a("St. Mary's")),
        ];
        assert_eq!(m.check_enrollment(&ok).unwrap().len(), 3);
        type Answers<'a> = &'a [(QuestionId, Secret<String>)];
        type Case<'a> = (Answers<'a>, fn(&QuestionError) -> bool);
        let cases: [Case<'_>; 5] = [
            (&ok[..2], |e| {
                matches!(
                    e,
                    QuestionError::WrongCount {
                        expected: 3,
                        given: 2
                    }
                )
            }),
            (
                &[
                    (q("pet"), a("Fluffy")),
                    (q("city"), a("  ab! ")),
                    (q("school"), a("St. Mary's")),
                ],
                |e| matches!(e, QuestionError::TooShort(id) if id.as_str() == "city"),
            ),
            (
                &[
                    (q("pet"), a("Fluffy")),
                    (q("city"), a("FLUFFY.")),
                    (q("school"), a("St. Mary's")),
                ],
                |e| matches!(e, QuestionError::DuplicateAnswer(x, y) if x.as_str() == "pet" && y.as_str() == "city"),
            ),
            (
                &[
                    (q("pet"), a("Fluffy")),
                    (q("pet"), a("Lyon")),
                    (q("school"), a("St. Mary's")),
                ],
                |e| matches!(e, QuestionError::DuplicateQuestion(_)),
            ),
            (
                &[
                    (q("pet"), a("Fluffy")),
                    (q("city"), a(&"x".repeat(201))),
                    (q("school"), a("St. Mary's")),
                ],
                |e| matches!(e, QuestionError::TooLong(_)),
            ),
        ];
        for (answers, expected) in cases {
            let err = m.check_enrollment(answers).unwrap_err();
            assert!(expected(&err), "{err:?}");
            // Errors name questions, never answers.
            assert!(!err.to_string().to_lowercase().contains("fluffy"));
        }
        let hasher = Hasher::new(HasherConfig::default()).unwrap();
        assert!(
            SecurityQuestions::new(
                hasher,
                QuestionsConfig {
                    enroll_count: 2,
                    ask_count: 3
                }
            )
            .is_err()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn enroll_then_verify() {
        let m = method(3, 2);
        let enrolled = m
            .enroll(&[
                (q("pet"), a("Fluffy")),
                (q("city"), a("New York")),
                (q("school"), a("St. Mary's")),
            ])
            .await
            .unwrap();
        assert_eq!(enrolled.len(), 3);
        for e in &enrolled {
            assert!(
                e.hash
                    .as_str()
                    .starts_with("$argon2id$v=19$m=19456,t=2,p=1$")
            );
        }
        let check = |given: Vec<(QuestionId, Secret<String>)>| m.check(Some(&enrolled), given);
        // Normalised on both sides.
        assert_eq!(
            check(vec![
                (q("city"), a(" new  york! ")),
                (q("pet"), a("FLUFFY"))
            ])
            .await
            .unwrap(),
            QuestionOutcome::Ok
        );
        // One wrong answer fails the whole set.
        assert_eq!(
            check(vec![(q("city"), a("Boston")), (q("pet"), a("Fluffy"))])
                .await
                .unwrap(),
            QuestionOutcome::Wrong
        );
        // Too few answers, the same question twice, a question never enrolled.
        assert_eq!(
            check(vec![(q("pet"), a("Fluffy"))]).await.unwrap(),
            QuestionOutcome::Wrong
        );
        assert_eq!(
            check(vec![(q("pet"), a("Fluffy")), (q("pet"), a("Fluffy"))])
                .await
                .unwrap(),
            QuestionOutcome::Wrong
        );
        assert_eq!(
            check(vec![(q("pet"), a("Fluffy")), (q("car"), a("Fluffy"))])
                .await
                .unwrap(),
            QuestionOutcome::Wrong
        );
        // Nothing enrolled (unknown user): dummy path, Wrong.
        assert_eq!(
            m.check(
                None,
                vec![(q("pet"), a("Fluffy")), (q("city"), a("New York"))]
            )
            .await
            .unwrap(),
            QuestionOutcome::Wrong
        );
        assert!(!m.counts_toward_required());
    }
}
