"""Real multilingual image-text data: open emoji drawings named in 100+ languages by Unicode CLDR."""
