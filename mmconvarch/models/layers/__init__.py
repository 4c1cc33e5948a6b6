from .reversible import ReversibleColumnsFunction, reversible_columns

__all__ = ['ReversibleColumnsFunction', 'reversible_columns']
