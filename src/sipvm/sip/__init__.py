"""SIP side of sipvm: the pjsua2 engine, its call channel, worker process and test peer."""
