"""What the tests share: peers, sites and state builders, waiting. Imported as
`tests.support.<module>` (the repository root is on pytest's `pythonpath`)."""
