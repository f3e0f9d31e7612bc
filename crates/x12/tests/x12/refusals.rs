//! Bad input of every kind is refused with an error naming segment and element, never a panic.
