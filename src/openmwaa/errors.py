"""The one error hierarchy of openmwaa.

Every error a request can end in is an :class:`OpenMwaaError`. Each class knows its wire
code (what botocore maps to an exception class), its HTTP status, whether it is the
sender's fault, and which body key carries the message (MWAA writes ``Message`` with a
capital M for AccessDeniedException and ``message`` elsewhere). Services raise these;
only the edge turns them into HTTP responses (``wire.error_response`` for MWAA,
``wire.sts`` for STS, both called by the pipeline).

    OpenMwaaError
    ├── ValidationError                 ValidationException          400
    ├── ResourceNotFoundError           ResourceNotFoundException    404
    ├── AccessDeniedError               AccessDeniedException        403  (Message)
    ├── ThrottlingError                 ThrottlingException          429
    ├── RestApiError                    (carries Airflow's status and body)
    │   ├── RestApiClientError          RestApiClientException       400
    │   └── RestApiServerError          RestApiServerException       400  (never 5xx)
    ├── AuthenticationError             (plain ClientError, never retried)
    │   ├── MissingAuthenticationTokenError   403
    │   ├── IncompleteSignatureError          400
    │   ├── UnrecognizedClientError           403
    │   ├── InvalidSignatureError             403
    │   └── ExpiredTokenError                 403
    ├── UnknownOperationError           UnknownOperationException    404
    ├── PayloadTooLargeError            ValidationException          413
    ├── ServiceUnavailableError         ServiceUnavailableException  503  (server fault)
    └── InternalServerError             InternalServerException      500  (server fault)
"""

from __future__ import annotations

from typing import Any, ClassVar


class OpenMwaaError(Exception):
    """Base of every error that reaches the wire."""

    code: ClassVar[str] = "InternalServerException"
    status: ClassVar[int] = 500
    sender_fault: ClassVar[bool] = False
    message_key: ClassVar[str] = "message"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, Any]:
        """The JSON members of the error body (``__type`` is added by the serializer)."""
        return {self.message_key: self.message}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ValidationError(OpenMwaaError):
    code = "ValidationException"
    status = 400
    sender_fault = True


class PayloadTooLargeError(ValidationError):
    status = 413


class ResourceNotFoundError(OpenMwaaError):
    code = "ResourceNotFoundException"
    status = 404
    sender_fault = True


class AccessDeniedError(OpenMwaaError):
    code = "AccessDeniedException"
    status = 403
    sender_fault = True
    message_key = "Message"


class ThrottlingError(OpenMwaaError):
    code = "ThrottlingException"
    status = 429
    sender_fault = True

    def __init__(self, message: str = "Rate exceeded") -> None:
        super().__init__(message)


class UnknownOperationError(OpenMwaaError):
    code = "UnknownOperationException"
    status = 404
    sender_fault = True


class RestApiError(OpenMwaaError):
    """Airflow answered with an error; its status and body travel to the caller."""

    status = 400
    sender_fault = True

    def __init__(self, message: str, rest_api_status_code: int, rest_api_response: Any) -> None:
        super().__init__(message)
        self.rest_api_status_code = rest_api_status_code
        self.rest_api_response = rest_api_response

    def body(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "RestApiStatusCode": self.rest_api_status_code,
            "RestApiResponse": self.rest_api_response,
        }

    def __repr__(self) -> str:
        # The response is sensitive in the model: keep it out of reprs and logs.
        return f"{type(self).__name__}({self.message!r}, status={self.rest_api_status_code})"


class RestApiClientError(RestApiError):
    code = "RestApiClientException"


class RestApiServerError(RestApiError):
    code = "RestApiServerException"


class AuthenticationError(OpenMwaaError):
    """SigV4 and credential failures: plain ClientErrors that no client retries."""

    status = 403
    sender_fault = True


class MissingAuthenticationTokenError(AuthenticationError):
    code = "MissingAuthenticationTokenException"

    def __init__(self, message: str = "Missing Authentication Token") -> None:
        super().__init__(message)


class IncompleteSignatureError(AuthenticationError):
    code = "IncompleteSignatureException"
    status = 400


class UnrecognizedClientError(AuthenticationError):
    code = "UnrecognizedClientException"

    def __init__(self, message: str = "The security token included in the request is invalid.") -> None:
        super().__init__(message)


class InvalidSignatureError(AuthenticationError):
    code = "InvalidSignatureException"


class ExpiredTokenError(AuthenticationError):
    code = "ExpiredTokenException"

    def __init__(self, message: str = "The security token included in the request is expired") -> None:
        super().__init__(message)


class ServiceUnavailableError(OpenMwaaError):
    code = "ServiceUnavailableException"
    status = 503


class InternalServerError(OpenMwaaError):
    code = "InternalServerException"
    status = 500
