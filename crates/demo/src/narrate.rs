//! The readable account the walk prints as it goes.

use std::io::Write;

/// Where the account goes: a terminal, a buffer a test reads, or nowhere.
pub struct Narrator(Option<Box<dyn Write + Send>>);

impl Narrator {
    pub fn stdout() -> Narrator {
        Narrator(Some(Box::new(std::io::stdout())))
    }

    pub fn to(w: impl Write + Send + 'static) -> Narrator {
        Narrator(Some(Box::new(w)))
    }

    pub fn quiet() -> Narrator {
        Narrator(None)
    }

    pub fn heading(&mut self, text: &str) {
        if let Some(w) = &mut self.0 {
            let _ = writeln!(w, "\n== {text}");
        }
    }

    pub fn line(&mut self, text: &str) {
        if let Some(w) = &mut self.0 {
            let _ = writeln!(w, "   {text}");
        }
    }
}
