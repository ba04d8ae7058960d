//! Fleet message schemas: the typed envelope and event types (see issue 5).
