//! From a Plane issue to an iCalendar event: the mapping rules of design.md ([`event`]), the
//! iCalendar layer underneath ([`ics`]) and the HTML-to-text converter for descriptions
//! ([`html`]). Pure: no I/O, shared by every target.

pub mod event;
pub mod html;
pub mod ics;
