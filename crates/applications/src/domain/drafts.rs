//! How much a draft may hold. A draft may run over the rule's character limits — they
//! are counted when it is submitted, with the numbers in the refusal — so an edit that
//! overshoots can still be saved and trimmed; but not without bound. Each field is refused
//! past twice its own rule's limit (every character counted, white space too), at the edge of
//! this service, naming the field and the bound. The application form has no character rule;
//! it is a form of short answers, bounded at [`APPLICATION_FORM_MAX_CHARS`].

use super::settings::Settings;

/// The fields of a draft, as update masks name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DraftField {
    ApplicationForm,
    OrganisationProfile,
    SelfAssessment,
}

/// The application form's bound: its answers are names, numbers and short descriptions.
pub const APPLICATION_FORM_MAX_CHARS: usize = 20_000;

/// How many times its rule's limit a draft field may hold.
pub const OVERSHOOT: usize = 2;

impl DraftField {
    pub const ALL: [DraftField; 3] = [
        DraftField::ApplicationForm,
        DraftField::OrganisationProfile,
        DraftField::SelfAssessment,
    ];

    pub const fn path(self) -> &'static str {
        match self {
            DraftField::ApplicationForm => "application_form",
            DraftField::OrganisationProfile => "organisation_profile",
            DraftField::SelfAssessment => "self_assessment",
        }
    }

    pub fn parse(path: &str) -> Option<DraftField> {
        DraftField::ALL.into_iter().find(|f| f.path() == path)
    }

    /// The most characters the field may hold in a draft under `settings`.
    pub fn max_chars(self, settings: &Settings) -> usize {
        match self {
            DraftField::ApplicationForm => APPLICATION_FORM_MAX_CHARS,
            DraftField::OrganisationProfile => OVERSHOOT * settings.profile_max_chars as usize,
            DraftField::SelfAssessment => OVERSHOOT * settings.self_assessment_max_chars as usize,
        }
    }

    /// Why `text` cannot be saved in this field of a draft, if it cannot.
    pub fn too_long(self, text: &str, settings: &Settings) -> Option<String> {
        let max = self.max_chars(settings);
        let n = text.chars().count();
        (n > max).then(|| {
            format!("has {n} characters; a draft holds at most {max} (R-05: twice the limit checked at submission)")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r05_a_draft_may_overshoot_its_limit_twice_and_no_more() {
        let s = Settings::default();
        let profile = DraftField::OrganisationProfile;
        assert_eq!(profile.max_chars(&s), 6_000);
        assert_eq!(profile.too_long(&"质".repeat(6_000), &s), None);
        let why = profile.too_long(&"质".repeat(6_001), &s).unwrap();
        assert!(why.contains("6001") && why.contains("6000"), "{why}");
        assert_eq!(DraftField::SelfAssessment.max_chars(&s), 120_000);
        // A programme that raises its limit raises the draft's bound with it.
        let roomy = Settings {
            profile_max_chars: 5_000,
            ..Settings::default()
        };
        assert_eq!(profile.too_long(&"a".repeat(9_000), &roomy), None);
        for f in DraftField::ALL {
            assert_eq!(DraftField::parse(f.path()), Some(f));
        }
        assert_eq!(DraftField::parse("stage"), None);
    }
}
