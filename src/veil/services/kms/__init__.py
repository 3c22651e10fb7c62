"""The KMS service: releases each app's keys only to attested, registered workers."""
