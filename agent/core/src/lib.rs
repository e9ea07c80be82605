//! Worktrail agent core (see issue 3).
