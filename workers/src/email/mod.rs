//! The email worker's parts. So far: rendering templates from `deploy/templates/<name>/`
//! ([`Templates`]) and checking every template against its sample data ([`check_dir`]).

pub mod check;
pub mod compose;
#[cfg(test)]
mod confirmation_tests;
pub mod error;
pub mod mailer;
pub mod memory;
pub mod money;
pub mod outcome;
pub mod privacy;
pub mod rate;
pub mod render;
#[cfg(test)]
mod render_tests;
pub mod ses;
pub mod smtp;

pub use check::{CheckError, TemplateCheck, check_dir};
pub use error::RenderError;
pub use mailer::{Account, Mailer, OutgoingEmail, SendError, SendErrorKind, Sent};
pub use memory::{Accepted, MemoryMailer};
pub use money::format_money;
pub use render::{Rendered, Templates};
pub mod worker;

pub use compose::{ComposeError, compose};
pub use outcome::EmailError;
pub use rate::SendRate;
pub use ses::{SesMailer, SesSettings};
pub use smtp::{SmtpError, SmtpMailer, SmtpSettings, SmtpTls};
pub use worker::{EmailSettings, EmailWorker, Handled};
