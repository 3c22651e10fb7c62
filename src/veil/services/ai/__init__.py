"""The AI gateway (`veil ai serve`): OpenAI-compatible, attested, every answer signed."""
