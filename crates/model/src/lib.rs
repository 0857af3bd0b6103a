//! The regulab MLP (see the model issue).
