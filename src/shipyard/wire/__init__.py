"""The HTTP wire format that the server answers in and the REST adapters read: request and
response bodies (pydantic), and the headers both sides name. Shared so that neither side
imports the other."""
