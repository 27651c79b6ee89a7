//! Deciding and carrying out: which calendar each project's events belong in ([`placement`]),
//! what to create, update or delete ([`plan`], pure), how to print it ([`render`]) and how to
//! apply it to the server ([`apply`]).

pub mod apply;
pub mod placement;
pub mod plan;
pub mod render;
