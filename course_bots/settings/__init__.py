"""Settings: the bot's prompt, persona, teaching mode and model, prompt versions and copy codes."""
