//! The readable account the walk prints as it goes.

use std::io::Write;

/// Where the account goes: a terminal or a buffer a test reads.
pub struct Narrator(Box<dyn Write + Send>);

impl Narrator {
    pub fn stdout() -> Narrator {
        Narrator(Box::new(std::io::stdout()))
    }

    pub fn to(w: impl Write + Send + 'static) -> Narrator {
        Narrator(Box::new(w))
    }

    pub fn heading(&mut self, text: &str) {
        let _ = writeln!(self.0, "\n== {text}");
    }

    pub fn line(&mut self, text: &str) {
        let _ = writeln!(self.0, "   {text}");
    }
}
