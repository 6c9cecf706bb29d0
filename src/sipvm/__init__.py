"""sipvm: a SIP voicemail server with IVR and shared inboxes."""

__version__ = "0.1.0"
