//! `calplanebot check`: a checklist of everything a run needs (configuration, Plane, CalDAV),
//! with a hint per failure. Writes nothing.

use crate::cli::{BehaviourArgs, ConnectionArgs};
use crate::exit::Status;

pub fn run(connection: &ConnectionArgs, behaviour: &BehaviourArgs) -> Status {
    let _ = (connection, behaviour);
    todo!("issue 5: calplanebot check")
}
