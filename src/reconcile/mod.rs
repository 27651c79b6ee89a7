//! Deciding and carrying out: which calendar each project's events belong in ([`placement`]),
//! what to create, update or delete ([`plan`], pure), how to print it ([`render`]), how to
//! apply it to the server ([`apply`]), and whose issues an assignee view holds ([`views`]).

pub mod apply;
pub mod placement;
pub mod plan;
pub mod render;
pub mod views;
