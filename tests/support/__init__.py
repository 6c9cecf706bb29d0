"""Test rigs kept out of the product: a scripted pjsua2 peer, an RTP caller, RTP pcaps, tones."""
