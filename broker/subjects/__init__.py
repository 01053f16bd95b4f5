"""The citizen's side: access reports ("who has seen my data") and held exchanges (preview)."""
