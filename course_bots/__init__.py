"""The product: course bots, chat, teacher controls and privacy."""
