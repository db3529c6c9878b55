"""S3's errors: each carries S3's own code and status (S3 answers them as XML, see ``s3.xml``).

They are OpenMwaaErrors like every other error, so the pipeline serializes, logs and audits them
the same way; only the serializer (chosen by the routed service, ``s3``) differs.

    S3Error
    ├── NoSuchBucketError             NoSuchBucket              404
    ├── NoSuchKeyError                NoSuchKey                 404
    ├── NoSuchVersionError            NoSuchVersion             404
    ├── NoSuchUploadError             NoSuchUpload              404
    ├── BucketAlreadyOwnedByYouError  BucketAlreadyOwnedByYou   409
    ├── BucketNotEmptyError           BucketNotEmpty            409
    ├── InvalidBucketNameError        InvalidBucketName         400
    ├── KeyTooLongError               KeyTooLongError           400
    ├── InvalidArgumentError          InvalidArgument           400
    ├── InvalidRequestError           InvalidRequest            400
    ├── MalformedXmlError             MalformedXML              400
    ├── BadDigestError                BadDigest                 400
    ├── InvalidDigestError            InvalidDigest             400
    ├── IncompleteBodyError           IncompleteBody            400
    ├── ContentSha256MismatchError    XAmzContentSHA256Mismatch 400
    ├── InvalidPartError              InvalidPart               400
    ├── InvalidPartOrderError         InvalidPartOrder          400
    ├── EntityTooSmallError           EntityTooSmall            400
    ├── InvalidRangeError             InvalidRange              416
    ├── EntityTooLargeError           EntityTooLarge            400
    ├── MethodNotAllowedError         MethodNotAllowed          405
    ├── PreconditionFailedError       PreconditionFailed        412
    ├── NotModifiedError              (no body)                 304
    └── NotImplementedS3Error         NotImplemented            501
"""

from __future__ import annotations

from typing import ClassVar

from openmwaa.errors import OpenMwaaError


class S3Error(OpenMwaaError):
    code: ClassVar[str] = "InvalidRequest"
    status: ClassVar[int] = 400
    sender_fault: ClassVar[bool] = True
    #: Headers the error answer carries (a delete marker's ``x-amz-delete-marker``).
    extra_headers: list[tuple[bytes, bytes]]

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.extra_headers = []


class NoSuchBucketError(S3Error):
    code = "NoSuchBucket"
    status = 404

    def __init__(self, bucket: str) -> None:
        super().__init__("The specified bucket does not exist")
        self.bucket = bucket


class NoSuchKeyError(S3Error):
    code = "NoSuchKey"
    status = 404

    def __init__(self, key: str) -> None:
        super().__init__("The specified key does not exist.")
        self.key = key


class NoSuchVersionError(S3Error):
    code = "NoSuchVersion"
    status = 404

    def __init__(self, key: str, version_id: str) -> None:
        super().__init__("The specified version does not exist.")
        self.key = key
        self.version_id = version_id


class NoSuchUploadError(S3Error):
    code = "NoSuchUpload"
    status = 404

    def __init__(self) -> None:
        super().__init__(
            "The specified upload does not exist. The upload ID may be invalid, "
            "or the upload may have been aborted or completed."
        )


class BucketAlreadyOwnedByYouError(S3Error):
    code = "BucketAlreadyOwnedByYou"
    status = 409

    def __init__(self, bucket: str) -> None:
        super().__init__("Your previous request to create the named bucket succeeded and you already own it.")
        self.bucket = bucket


class BucketNotEmptyError(S3Error):
    code = "BucketNotEmpty"
    status = 409

    def __init__(self, bucket: str) -> None:
        super().__init__("The bucket you tried to delete is not empty")
        self.bucket = bucket


class InvalidBucketNameError(S3Error):
    code = "InvalidBucketName"


class KeyTooLongError(S3Error):
    code = "KeyTooLongError"


class InvalidArgumentError(S3Error):
    code = "InvalidArgument"


class InvalidRequestError(S3Error):
    code = "InvalidRequest"


class MalformedXmlError(S3Error):
    code = "MalformedXML"

    def __init__(self, message: str = "The XML you provided was not well-formed or did not validate") -> None:
        super().__init__(message)


class BadDigestError(S3Error):
    code = "BadDigest"


class InvalidDigestError(S3Error):
    code = "InvalidDigest"


class IncompleteBodyError(S3Error):
    code = "IncompleteBody"


class ContentSha256MismatchError(S3Error):
    """The body is not the one the signature covers (its SHA-256 is not x-amz-content-sha256)."""

    code = "XAmzContentSHA256Mismatch"


class InvalidPartError(S3Error):
    code = "InvalidPart"


class InvalidPartOrderError(S3Error):
    code = "InvalidPartOrder"


class EntityTooSmallError(S3Error):
    code = "EntityTooSmall"


class InvalidRangeError(S3Error):
    code = "InvalidRange"
    status = 416

    def __init__(self) -> None:
        super().__init__("The requested range is not satisfiable")


class EntityTooLargeError(S3Error):
    code = "EntityTooLarge"


class MethodNotAllowedError(S3Error):
    code = "MethodNotAllowed"
    status = 405


class PreconditionFailedError(S3Error):
    code = "PreconditionFailed"
    status = 412

    def __init__(self) -> None:
        super().__init__("At least one of the pre-conditions you specified did not hold")


class NotModifiedError(S3Error):
    code = "NotModified"
    status = 304

    def __init__(self) -> None:
        super().__init__("Not Modified")


class NotImplementedS3Error(S3Error):
    code = "NotImplemented"
    status = 501
    sender_fault = False
