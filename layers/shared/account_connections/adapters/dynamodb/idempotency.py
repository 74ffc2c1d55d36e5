"""powertools' idempotency records in the state table, where a create's own transaction completes
the record of its Idempotency-Key (``IDEMPOTENCY#create_connection``).

powertools writes a record twice around the function it guards: a conditional PutItem of an
``INPROGRESS`` record before, an UpdateItem to ``COMPLETED`` with the response after. A create
knows its response before its one ``TransactWriteItems`` (the connection as stored, less the
connection token the record never keeps), so that transaction also makes powertools' update, as
one of its items: a keyed create is then three calls (the put, the transaction,
``StartExecution``), not four. Everything else is powertools': the record's format, the
in-progress put and its expiry, payload validation, the replay of a completed record, the delete
of the record when the function raises.

Imported on use (``wiring.idempotency_persistence``): only the requesters' function needs it.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from typing import Any

from aws_lambda_powertools.shared.json_encoder import Encoder
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import STATUS_CONSTANTS, DataRecord
from aws_lambda_powertools.utilities.idempotency.persistence.dynamodb import DynamoDBPersistenceLayer
from botocore.exceptions import ClientError

from account_connections.adapters.dynamodb.table import Op


def _as_stored(result: dict[str, Any]) -> str:
    """A response as powertools' ``save_success`` writes it to the record."""
    return json.dumps(result, cls=Encoder, sort_keys=True)


class TransactionalIdempotency(DynamoDBPersistenceLayer):
    """powertools' ``DynamoDBPersistenceLayer``, whose in-progress record the guarded function may
    complete in a transaction of its own (``completion``); ``save_success`` then writes nothing.

    What an invocation put and what its transaction completes are kept per execution context (a
    ``ContextVar``: each thread its own), since one layer serves every invocation of the process.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # This invocation's INPROGRESS record as put, and the COMPLETED record its last
        # ``completion`` wrote (or will write, if that transaction commits).
        self._in_progress: ContextVar[DataRecord | None] = ContextVar("idempotency_in_progress", default=None)
        self._completed: ContextVar[DataRecord | None] = ContextVar("idempotency_completed", default=None)

    def _put_record(self, data_record: DataRecord) -> None:
        super()._put_record(data_record)
        self._in_progress.set(data_record)
        self._completed.set(None)

    def completion(self, result: dict[str, Any]) -> Op:
        """The transaction item that completes this invocation's record with ``result`` (the
        response as the output serializer makes it): the ``UpdateItem`` of powertools'
        ``save_success``, its attributes and values exactly (status, response, expiry, the payload's
        hash), conditioned on the record being still the ``INPROGRESS`` record this invocation put
        (its expiries as put: one that another invocation took over after this one's expired has
        later ones). Its condition failing cancels the transaction, with nothing written.
        Raises ``RuntimeError`` when this invocation put no record (a function not guarded)."""
        mine = self._in_progress.get()
        if mine is None:
            raise RuntimeError("this invocation holds no in-progress idempotency record to complete")
        record = DataRecord(
            idempotency_key=mine.idempotency_key,
            status=STATUS_CONSTANTS["COMPLETED"],
            expiry_timestamp=self._get_expiry_timestamp(),
            response_data=_as_stored(result),
            payload_hash=mine.payload_hash,
        )
        # As powertools' ``_update_record`` writes it.
        update = "SET #response_data = :response_data, #expiry = :expiry, #status = :status"
        names = {"#expiry": self.expiry_attr, "#response_data": self.data_attr, "#status": self.status_attr}
        values: dict[str, Any] = {
            ":expiry": {"N": str(record.expiry_timestamp)},
            ":response_data": {"S": record.response_data},
            ":status": {"S": record.status},
        }
        if self.payload_validation_enabled:
            update += ", #validation_key = :validation_key"
            values[":validation_key"] = {"S": record.payload_hash}
            names["#validation_key"] = self.validation_key_attr
        # Still the record this invocation put.
        names["#in_progress_expiry"] = self.in_progress_expiry_attr
        values[":in_progress"] = {"S": STATUS_CONSTANTS["INPROGRESS"]}
        values[":put_expiry"] = {"N": str(mine.expiry_timestamp)}
        condition = "#status = :in_progress AND #expiry = :put_expiry AND "
        if mine.in_progress_expiry_timestamp is None:
            condition += "attribute_not_exists(#in_progress_expiry)"
        else:
            condition += "#in_progress_expiry = :put_in_progress_expiry"
            values[":put_in_progress_expiry"] = {"N": str(mine.in_progress_expiry_timestamp)}
        self._completed.set(record)
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": self._get_key(record.idempotency_key),
                "UpdateExpression": update,
                "ConditionExpression": condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }

    def save_success(self, data: dict[str, Any], result: dict[str, Any]) -> None:
        """Nothing to write when the function's transaction completed the record with this very
        response (it returned, so its last transaction committed); otherwise powertools' update."""
        completed = self._completed.get()
        self._in_progress.set(None)
        self._completed.set(None)
        if (
            completed is not None
            and completed.idempotency_key == self._get_hashed_idempotency_key(data=data)
            and completed.response_data == _as_stored(result)
        ):
            self._save_to_cache(data_record=completed)
            return
        super().save_success(data, result)

    def delete_record(self, data: dict[str, Any], exception: Exception) -> None:
        """powertools' delete (the function raised): the record goes, in progress or completed by a
        transaction whose function failed after it (the workflow did not start), and the key is
        free again."""
        try:
            super().delete_record(data, exception)
        finally:
            self._in_progress.set(None)
            self._completed.set(None)

    def _delete_record(self, data_record: DataRecord) -> None:
        """powertools' DeleteItem, of this invocation's record only: one that another invocation
        took over after this one's in-progress expiry (a later ``in_progress_expiration``, which
        the completion keeps) is left to that one."""
        mine = self._in_progress.get()
        if mine is None or mine.in_progress_expiry_timestamp is None:
            super()._delete_record(data_record)
            return
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key=self._get_key(data_record.idempotency_key),
                ConditionExpression="#in_progress_expiry = :put_in_progress_expiry",
                ExpressionAttributeNames={"#in_progress_expiry": self.in_progress_expiry_attr},
                ExpressionAttributeValues={
                    ":put_in_progress_expiry": {"N": str(mine.in_progress_expiry_timestamp)}
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
