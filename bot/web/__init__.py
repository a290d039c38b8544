"""The web console for NGO staff (`python -m bot web`, or WEB_LISTEN beside the bot): a preview of the
questionnaire in a phone-sized chat, the insights as a page, and the catalogs side by side for translators."""
