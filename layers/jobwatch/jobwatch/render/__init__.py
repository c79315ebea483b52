"""Pure rendering of transitions into what people read: the shared view, e-mail text, Slack blocks."""
